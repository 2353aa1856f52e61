#!/bin/sh
# One-shot setup of the compose stack (service `setup`, image curlimages/curl): registers the
# Debezium MySQL connector and imports the Kibana dashboard. Both steps are idempotent: the
# connector's config is PUT (created or replaced), the saved objects are imported with
# overwrite=true. Compose starts it once Connect and Kibana are healthy.
set -eu

connector=outbound-mysql
echo "registering the Debezium connector $connector"
curl -fsS -X PUT -H 'Content-Type: application/json' \
    --data @/deploy/debezium/outbound-mysql.json \
    "http://connect:8083/connectors/$connector/config"
echo

echo "importing the Kibana dashboard"
answer=$(curl -fsS -X POST -H 'kbn-xsrf: true' \
    --form file=@/deploy/kibana/outbound-dashboard.ndjson \
    'http://kibana:5601/api/saved_objects/_import?overwrite=true')
echo "$answer"
# A 200 can still report objects that failed to import.
case "$answer" in
    *'"success":true'*) ;;
    *) echo "the Kibana import reported errors" >&2; exit 1 ;;
esac

echo "setup done: Kibana http://localhost:5601/app/dashboards#/view/cdcflow-outbound"
