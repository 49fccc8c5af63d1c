-- q13: bounded side-input join. The side input lives in Redis as nexmark:side:<k> = 'side-<k>'
-- for k in 0..9999 (tests/integration/async_redis.sh seeds it), joined on mod(auction, 10000).
SELECT auction, bidder, price, dateTime, 'side-' || (auction % 10000) AS value FROM bid;
