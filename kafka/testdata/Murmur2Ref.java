// Murmur2Ref prints the partitions the Apache Kafka Java client chooses for
// keyed records, the reference values hard-coded in partitioner_test.go.
//
// Run from the repository root (Java 17, Maven):
//
//	mvn -q dependency:get -Dartifact=org.apache.kafka:kafka-clients:4.1.2
//	M2=~/.m2/repository
//	java -cp $M2/org/apache/kafka/kafka-clients/4.1.2/kafka-clients-4.1.2.jar:$M2/org/slf4j/slf4j-api/1.7.36/slf4j-api-1.7.36.jar \
//	    kafka/testdata/Murmur2Ref.java
//
// (dependency:get also fetches slf4j-api, which Utils needs at class load.)
import java.nio.charset.StandardCharsets;

import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.utils.Utils;

public class Murmur2Ref {
    public static void main(String[] args) {
        String[] keys = {
            "D1", "STS-00000123", "CSA0000042", "", "a", "차량1",
            // The vectors of Kafka's UtilsTest.testMurmur2.
            "21", "foobar", "a-little-bit-long-string", "a-little-bit-longer-string",
            "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", "abc",
        };
        for (String k : keys) {
            // StringSerializer encodes keys as UTF-8.
            byte[] b = k.getBytes(StandardCharsets.UTF_8);
            // partitionForKey is what the default partitioner does with a
            // keyed record: toPositive(murmur2(key)) % numPartitions.
            System.out.printf("{%s, %d, %d, %d},%n",
                quote(k), Utils.murmur2(b),
                BuiltInPartitioner.partitionForKey(b, 6),
                BuiltInPartitioner.partitionForKey(b, 12));
        }
    }

    private static String quote(String s) {
        return "\"" + s + "\"";
    }
}
