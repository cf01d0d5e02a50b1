import { SluiceError, type SluiceErrorOptions } from '../common/errors.js';

/** A tool the local stack needs (Java, Maven) is missing or too old. */
export class PrerequisiteError extends SluiceError {
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super('SLUICE_PREREQUISITE', message, options);
  }
}

/** Fetching the broker's jars failed. */
export class KafkaFetchError extends SluiceError {
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super('SLUICE_KAFKA_FETCH', message, options);
  }
}

/** The local broker failed to start, or stopped when it should not have. */
export class BrokerStartError extends SluiceError {
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super('SLUICE_BROKER_START', message, options);
  }
}

/** A port chosen for the local broker was taken by another process before the broker bound it. */
export class BrokerPortTakenError extends SluiceError {
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super('SLUICE_BROKER_PORT_TAKEN', message, options);
  }
}

/** A Kafka cluster did not answer. Retriable: it may come up. */
export class KafkaUnreachableError extends SluiceError {
  /** `setting` names where the addresses came from (KAFKA_BROKERS), for the message. */
  constructor(brokers: readonly string[], options: SluiceErrorOptions & { readonly setting?: string } = {}) {
    const reason = options.cause instanceof Error ? `: ${options.cause.message.replace(/^Connection error: /, '')}` : '';
    const origin = options.setting ? ` (${options.setting})` : '';
    super('SLUICE_KAFKA_UNREACHABLE', `cannot reach Kafka at ${brokers.join(',')}${origin}${reason}`, {
      retriable: true,
      ...options,
      context: { brokers },
    });
  }
}

/** An existing topic differs from its declaration in a way that cannot be changed safely. */
export class TopicMismatchError extends SluiceError {
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super('SLUICE_TOPIC_MISMATCH', message, options);
  }
}
