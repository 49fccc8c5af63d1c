-- q8: monitor new users: persons who opened an auction in the TUMBLE(10 s) window they
-- registered in.
WITH P AS (
  SELECT id, name, (dateTime / 10000) * 10000 AS starttime FROM person GROUP BY id, name, dateTime / 10000
),
A AS (
  SELECT seller, (dateTime / 10000) * 10000 AS starttime FROM auction GROUP BY seller, dateTime / 10000
)
SELECT P.id, P.name, P.starttime FROM P JOIN A ON P.id = A.seller AND P.starttime = A.starttime;
