package dev.ipseccni.agent.journal;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ipseccni.bus.JsonRecordCodec;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.function.Predicate;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Reads the journal back from the beginning of the topic (no consumer group: reading does
 * not move anyone's offsets), each partition in order, so one node's events come in the
 * order it published them.
 */
public final class KafkaEventReader {
  private KafkaEventReader() {}

  /** Kafka could not be reached or the topic does not exist. */
  public static final class JournalUnreachable extends Exception {
    JournalUnreachable(String message) {
      super(message);
    }
  }

  /**
   * Hands each event's JSON to the consumer, until it returns false, or (unless following)
   * until the end of the topic as it was when reading started.
   */
  public static void read(String bootstrap, String topic, boolean follow, Predicate<JsonNode> onEvent)
      throws JournalUnreachable {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
    p.put(ConsumerConfig.CLIENT_ID_CONFIG, "ipsec-cni-events-reader");
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
      List<PartitionInfo> infos;
      try {
        infos = consumer.partitionsFor(topic, Duration.ofSeconds(10));
      } catch (KafkaException e) {
        throw new JournalUnreachable("cannot read the Kafka journal at " + bootstrap + ": " + e.getMessage());
      }
      if (infos == null || infos.isEmpty()) {
        throw new JournalUnreachable("the Kafka journal topic '" + topic + "' does not exist at " + bootstrap
            + " (no agent has written to it yet?)");
      }
      List<TopicPartition> partitions = new ArrayList<>();
      infos.forEach(i -> partitions.add(new TopicPartition(topic, i.partition())));
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
      while (true) {
        for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(500))) {
          JsonNode event;
          try {
            event = JsonRecordCodec.MAPPER.readTree(record.value());
          } catch (IOException e) {
            continue;
          }
          if (!onEvent.test(event)) {
            return;
          }
        }
        if (!follow && partitions.stream().allMatch(tp -> consumer.position(tp) >= end.get(tp))) {
          return;
        }
      }
    } catch (KafkaException e) {
      throw new JournalUnreachable("reading the Kafka journal at " + bootstrap + " failed: " + e.getMessage());
    }
  }
}
