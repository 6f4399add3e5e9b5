#!/bin/sh
# Formats KRaft storage once (same cluster id on every node), then runs the broker+controller.
set -eu
: "${KAFKA_NODE_ID:?set KAFKA_NODE_ID to 1, 2 or 3}"
: "${KAFKA_CLUSTER_ID:?set KAFKA_CLUSTER_ID (any 22-char base64 uuid, the same on every node)}"
config="/opt/kafka/config/node${KAFKA_NODE_ID}.properties"
cp="/opt/kafka/libs/*"
logs="-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties -Dinbound.kafka.log.dir=/var/lib/kafka/logs"
mkdir -p /var/lib/kafka/logs
if [ ! -f /var/lib/kafka/data/meta.properties ]; then
  java $logs -cp "$cp" kafka.tools.StorageTool format -t "$KAFKA_CLUSTER_ID" -c "$config" --ignore-formatted
fi
exec java "-Xmx${KAFKA_HEAP}" "-Xms${KAFKA_HEAP}" $logs -cp "$cp" kafka.Kafka "$config"
