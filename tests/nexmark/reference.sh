#!/bin/sh
# Computes a Nexmark query's result with SQLite from dumped events (person.csv, auction.csv,
# bid.csv): an implementation independent of Sluice, used to check its results.
# Output is plain comma-separated (no quoting): generated Nexmark strings hold no comma or quote.
# usage: reference.sh EVENTS_DIR QUERY OUT.csv
set -eu
DIR=$1 Q=$2 OUT=$3
HERE=$(cd "$(dirname "$0")" && pwd)
SQL="$HERE/sql/$Q.sql"
[ -f "$SQL" ] || { echo "reference.sh: no SQL for query '$Q' ($SQL)" >&2; exit 2; }
DB=$(mktemp)
trap 'rm -f "$DB"' EXIT
sqlite3 "$DB" <<SQL
CREATE TABLE person (id INTEGER, name TEXT, emailAddress TEXT, creditCard TEXT, city TEXT, state TEXT,
                     dateTime INTEGER, extra TEXT);
CREATE TABLE auction (id INTEGER, itemName TEXT, description TEXT, initialBid INTEGER, reserve INTEGER,
                      dateTime INTEGER, expires INTEGER, seller INTEGER, category INTEGER, extra TEXT);
CREATE TABLE bid (auction INTEGER, bidder INTEGER, price INTEGER, channel TEXT, url TEXT, dateTime INTEGER,
                  extra TEXT);
.mode csv
.import --skip 1 $DIR/person.csv person
.import --skip 1 $DIR/auction.csv auction
.import --skip 1 $DIR/bid.csv bid
.mode list
.separator ,
.headers on
.output $OUT
.read $SQL
SQL
