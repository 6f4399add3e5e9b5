// The soak's Java client: the official Kafka producer (acks=all, idempotent) reading
// "topic<TAB>id<TAB>value" lines on stdin and printing "ACK id" or "FAIL id reason" per
// delivery callback, so the soak knows exactly which records the broker acknowledged.
// Usage: java -cp <kafka libs>/* SoakProducer.java <client.properties>

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class SoakProducer {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            props.load(in);
        }
        props.put("key.serializer", ByteArraySerializer.class.getName());
        props.put("value.serializer", ByteArraySerializer.class.getName());
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        BufferedReader lines =
            new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            String line;
            while ((line = lines.readLine()) != null) {
                String[] parts = line.split("\t", 3);
                if (parts.length != 3) {
                    continue;
                }
                final String id = parts[1];
                byte[] value = parts[2].getBytes(StandardCharsets.UTF_8);
                producer.send(new ProducerRecord<>(parts[0], value), (meta, error) -> {
                    synchronized (out) {
                        if (error == null) {
                            out.println("ACK " + id);
                        } else {
                            out.println("FAIL " + id + " " + error.getClass().getSimpleName());
                        }
                    }
                });
            }
            producer.flush();
        }
        synchronized (out) {
            out.println("DONE");
        }
    }
}
