-- q4: average closing price per category (the average as a double, 3 decimals).
SELECT Q.category, printf('%.3f', AVG(Q.final)) AS avg
FROM (SELECT MAX(B.price) AS final, A.category
      FROM auction A, bid B
      WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
      GROUP BY A.id, A.category) Q
GROUP BY Q.category;
