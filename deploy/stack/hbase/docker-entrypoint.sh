#!/bin/sh
# Container entry point: fill hbase-site.xml like callscope stack does, start the master (with
# its region server and in-process ZooKeeper on 2182), then run the Thrift server in front.
set -eu
conf=/opt/hbase/conf
mkdir -p /data/hbase /data/tmp /data/zk
sed -e 's|${host}|127.0.0.1|g' -e 's|${data_dir}|/data/hbase|g' -e 's|${tmp_dir}|/data/tmp|g' \
    -e 's|${zk_dir}|/data/zk|g' -e 's|${zk_port}|2182|g' -e 's|${master_port}|16000|g' \
    -e 's|${regionserver_port}|16020|g' -e 's|${thrift_port}|9090|g' \
    "$conf/hbase-site.xml" > /tmp/hbase-site.xml
mkdir -p /opt/hbase/site && mv /tmp/hbase-site.xml /opt/hbase/site/hbase-site.xml
opens=""
for m in java.lang java.lang.reflect java.io java.net java.nio sun.nio.ch java.util \
         java.util.concurrent java.util.concurrent.atomic java.util.regex jdk.internal.misc \
         jdk.internal.ref; do
  opens="$opens --add-opens=java.base/$m=ALL-UNNAMED"
done
jvm="-XX:+ExitOnOutOfMemoryError -Djava.net.preferIPv4Stack=true $opens \
 --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED \
 --add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED \
 -Dorg.apache.hbase.thirdparty.io.netty.tryReflectionSetAccessible=true \
 -Dlog4j2.configurationFile=$conf/log4j2.properties -cp /opt/hbase/site:/opt/hbase/lib/*"
# shellcheck disable=SC2086
java -Xms256m -Xmx1g $jvm org.apache.hadoop.hbase.master.HMaster start &
# shellcheck disable=SC2086
exec java -Xms64m -Xmx256m $jvm org.apache.hadoop.hbase.thrift.ThriftServer -b 0.0.0.0 -p 9090 start
