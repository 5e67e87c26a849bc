#!/usr/bin/env bash
# examples/warehouse/run.sh: the layered warehouse on the local Kafka broker.
#
#   1. starts the broker (integration/kafka.sh start; idempotent),
#   2. produces a shop database's changes as Canal JSON with
#      integration/cdcgen (orders, users, regions: inserts, updates,
#      deletes; ad events: inserts) into fresh topics, while
#   3. `floe ingest` mirrors them into ODS tables (upserts; ad events
#      appended) until every table holds what the generator's replay says,
#   4. then runs the upper layers — dwd (floe transform), dws and ads
#      (floe aggregate) — each as a backfill, and DuckDB's cross-check
#      (duckdb_check.py) when the engines venv is installed.
#
# Environment: CHANGES (default 300000), SEED (1), KEYS (10000), STEP
# (database time between events, 20ms: the stream spans ~80 minutes from
# 23:30 in Asia/Shanghai, across a local midnight), LAKE (warehouse-lake,
# relative to the repository root; removed first).
set -euo pipefail
cd "$(dirname "$0")/../.."
ex=examples/warehouse
CHANGES=${CHANGES:-300000}
SEED=${SEED:-1}
KEYS=${KEYS:-10000}
STEP=${STEP:-20ms}
LAKE=${LAKE:-warehouse-lake}

say() { printf '\n== %s\n' "$*"; }

say "broker"
eval "$(integration/kafka.sh start)"
echo "FLOE_KAFKA_BROKERS=$FLOE_KAFKA_BROKERS"

say "build"
mkdir -p bin
go build -o bin/floe ./cmd/floe
go build -o bin/cdcgen ./integration/cdcgen

rm -rf "$LAKE"
mkdir -p "$LAKE"
prefix="shop-$(date +%s)"
# The config with this run's topics and lake.
sed -e "s/shop\.\(orders\|users\|regions\|ad_events\)/$prefix.\1/g" \
    -e "s#warehouse-lake/#$LAKE/#g" \
    -e "s/group: floe-warehouse/group: floe-$prefix/" "$ex/floe.yaml" > "$LAKE/floe.yaml"
cfg="$LAKE/floe.yaml"

say "produce $CHANGES changes (seed $SEED, $KEYS keys) to $prefix.{orders,users,regions,ad_events}, and ingest them"
gen=(bin/cdcgen -format canal-json -topic "$prefix.{table}" -seed "$SEED" -changes "$CHANGES" -keys "$KEYS" -step "$STEP" -load-users)
"${gen[@]}" -dry-run -replay "$LAKE/replay.jsonl" 2>"$LAKE/cdcgen.txt"
cat "$LAKE/cdcgen.txt"
# Topics first, so that floe ingest finds them; then the stream while
# floe ingest runs: the dimensions' initial load (regions, users), a
# pause of a few commits so that the mirrors hold it before the first
# orders arrive, then the changes at 20k/s.
"${gen[@]}" -changes 0 2>/dev/null || true
"${gen[@]}" -load-pause 8s -rate 20000 &
producer=$!
bin/floe ingest -config "$cfg" -metrics-address off >"$LAKE/ingest.log" 2>&1 &
ingest=$!
trap 'kill $ingest 2>/dev/null || true; kill $producer 2>/dev/null || true' EXIT
wait $producer

# The rows each table must hold, from the replay.
declare -A want
for t in orders users regions ad_events; do
	want[$t]=$(grep -c "\"table\":\"$t\"" "$LAKE/replay.jsonl" || true)
done
# The change log holds every row change of orders.
want[orders_changes]=$(grep -o ' orders=[0-9]*' "$LAKE/cdcgen.txt" | cut -d= -f2)
say "wait until the ODS tables hold the replay's rows"
deadline=$((SECONDS + 600))
while :; do
	done_all=1
	line=""
	for t in orders users regions ad_events orders_changes; do
		got=$(bin/floe read -config "$cfg" -format jsonl -columns "$(case $t in orders*) echo id;; users) echo user_id;; regions) echo region_id;; *) echo event_id;; esac)" "ods.$t" 2>/dev/null | wc -l || echo 0)
		line+=" ods.$t $got/${want[$t]}"
		[ "$got" = "${want[$t]}" ] || done_all=0
	done
	echo "$line"
	[ $done_all = 1 ] && break
	if ! kill -0 $ingest 2>/dev/null; then echo "floe ingest exited; see $LAKE/ingest.log"; tail -20 "$LAKE/ingest.log"; exit 1; fi
	if [ $SECONDS -gt $deadline ]; then echo "the ODS tables did not catch up in 10 minutes; see $LAKE/ingest.log"; exit 1; fi
	sleep 3
done

mirror_ok=1
say "ODS mirror = replay, row for row (ods.orders, ods.users, ods.regions)"
# floe read prints what the generator's replay prints for these types,
# except decimals, which it prints without trailing zeros (142.9 for
# 142.90): both sides lose them here; both sorted.
nozeros() { sed -E -e 's/("amount":"[0-9]+\.[0-9]*[1-9])0+"/\1"/' -e 's/("amount":"[0-9]+)\.0+"/\1"/'; }
for t in orders users regions; do
	grep "\"table\":\"$t\"" "$LAKE/replay.jsonl" | sed -e 's/^{"table":"[a-z_]*","row"://' -e 's/}$//' | nozeros | sort >"$LAKE/want-$t.jsonl"
	bin/floe read -config "$cfg" -format jsonl "ods.$t" 2>/dev/null | nozeros | sort >"$LAKE/got-$t.jsonl"
	if cmp -s "$LAKE/want-$t.jsonl" "$LAKE/got-$t.jsonl"; then
		echo "ods.$t: $(wc -l <"$LAKE/got-$t.jsonl") rows, equal to the replay"
	else
		echo "ods.$t differs from the replay (first differences):"
		diff "$LAKE/want-$t.jsonl" "$LAKE/got-$t.jsonl" | head -6 || true
		mirror_ok=0
	fi
done

# The upper layers, each as a backfill; a layer that fails fails the run.
ran=() failed=()
layer() { # name, command...
	local name=$1
	shift
	echo "+ $*"
	if "$@" >"$LAKE/$name.log" 2>&1; then
		ran+=("$name")
	else
		failed+=("$name: $({ grep -v '^time=' "$LAKE/$name.log" | head -2 | tr '\n' ' '; } || true) (log $LAKE/$name.log)")
		echo "   failed: ${failed[-1]}"
	fi
}
say "DWD: dwd.order_detail (floe transform)"
layer dwd_order_detail bin/floe transform -config "$cfg" -spec "$ex/dwd/order_detail.yaml" -backfill
say "DWS/ADS (floe aggregate, YAML form)"
for spec in ads/ad_show ads/dau_daily dws/gmv_city_5m ads/gmv_dtd; do
	layer "$(basename $spec)" bin/floe aggregate -config "$cfg" -spec "$ex/$spec.yaml" -backfill
done

say "ADS in Floe's SQL form (floe aggregate -spec FILE.sql)"
for spec in ads/ad_show dws/gmv_city_5m ads/gmv_dtd; do
	out=$(dirname $spec).$(basename $spec)_sql
	layer "$(basename $spec)_sql" bin/floe aggregate -config "$cfg" -spec "$ex/$spec.sql" -output "${out}" -backfill
done

say "results"
show() { # table, columns, n
	local f="$LAKE/$(echo "$1" | tr . _).csv"
	if bin/floe read -config "$cfg" -format csv -columns "$2" "$1" >"$f" 2>/dev/null && [ -s "$f" ]; then
		echo "$1 ($(($(wc -l <"$f") - 1)) rows), first $3:"
		head -1 "$f"
		tail -n +2 "$f" | sort | head -"$3" || true
	else
		echo "$1: not there"
	fi
}
show ads.ad_show dt,hour,ad_action,cnt,u_cnt,device_cnt 8
show ads.dau_daily dt,dau,new_users,returning_users 4
show dwd.order_detail order_id,user_id,amount,province,city,dt 4
show dws.gmv_city_5m window_start,province,city,gmv,buyers,rank 6
show ads.gmv_dtd window_end,gmv,buyers 4

say "DuckDB runs the SQL texts over the same tables (the batch cross-check)"
venv=$(ls -d "$HOME"/.cache/floe/venv-engines-* 2>/dev/null | head -1 || true)
duckdb="not run: no engines venv with duckdb and pyiceberg (integration/engines/setup.sh python)"
if [ -n "$venv" ] && "$venv/bin/python" -c 'import duckdb, pyiceberg' 2>/dev/null; then
	if "$venv/bin/python" "$ex/duckdb_check.py" --catalog "$LAKE/catalog.db" --warehouse "$LAKE/warehouse" \
		"$ex/dwd/order_detail.yaml=dwd.order_detail" \
		"$ex/dws/gmv_city_5m.sql=dws.gmv_city_5m WHERE rank <= 3" "$ex/dws/gmv_city_5m.sql=dws.gmv_city_5m_sql WHERE rank <= 3" \
		"$ex/ads/ad_show.sql=ads.ad_show" "$ex/ads/ad_show.sql=ads.ad_show_sql" \
		"$ex/ads/dau_daily.sql=ads.dau_daily" "$ex/ads/gmv_dtd.sql=ads.gmv_dtd" "$ex/ads/gmv_dtd.sql=ads.gmv_dtd_sql"; then
		duckdb="the same rows as every Floe output"
	else
		duckdb="differs (above)"
		failed+=("duckdb: the cross-check differs (above)")
	fi
fi

say "summary"
echo "ran:     ${ran[*]:-none}"
for f in "${failed[@]}"; do echo "failed:  $f"; done
echo "duckdb:  $duckdb"
echo "lake:    $LAKE (config $cfg, floe log $LAKE/ingest.log)"
[ $mirror_ok = 1 ] || { echo "FAILED: an ODS mirror differs from the replay"; exit 1; }
[ ${#failed[@]} = 0 ] || { echo "FAILED: ${#failed[@]} step(s) above"; exit 1; }
