-- q1: currency conversion (dollars to euros).
SELECT auction, bidder, printf('%.3f', 0.908 * price) AS price, dateTime, extra FROM bid;
