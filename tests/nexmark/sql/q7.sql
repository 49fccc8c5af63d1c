-- q7: highest bid per TUMBLE(dateTime, 10 s) window, joined back on price within
-- [window_end - 10 s, window_end].
WITH B1 AS (
  SELECT MAX(price) AS maxprice, (dateTime / 10000) * 10000 + 10000 AS endtime
  FROM bid GROUP BY dateTime / 10000
)
SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra
FROM bid B JOIN B1 ON B.price = B1.maxprice
WHERE B.dateTime BETWEEN B1.endtime - 10000 AND B1.endtime;
