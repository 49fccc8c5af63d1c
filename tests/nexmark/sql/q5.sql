-- q5: hot items: HOP(dateTime, 2 s slide, 10 s size); the auctions with the most bids per window.
WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 4),
windows AS (
  SELECT B.auction, ((B.dateTime / 2000) - k.i) * 2000 AS starttime
  FROM bid B, k
),
AuctionBids AS (
  SELECT auction, count(*) AS num, starttime FROM windows GROUP BY auction, starttime
),
MaxBids AS (
  SELECT max(num) AS maxn, starttime FROM AuctionBids GROUP BY starttime
)
SELECT A.auction, A.num
FROM AuctionBids A JOIN MaxBids M ON A.starttime = M.starttime AND A.num >= M.maxn;
