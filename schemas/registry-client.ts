import { SchemaRegistryError } from './errors.js';

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

let processToken: string | undefined;

/**
 * Sets the token sluice's own registry calls of this process send (`Authorization: Bearer`):
 * entry points call it once with the configured SLUICE_REGISTRY_AUTH_TOKEN, so registrations from
 * any module authenticate alike.
 */
export function useRegistryToken(token: string | undefined): void {
  processToken = token;
}

/**
 * The few Confluent REST calls sluice itself makes (registration at start-up, compatibility
 * checks), over fetch. Unlike @kafkajs/confluent-schema-registry's `register`, it never writes
 * a subject-level compatibility config as a side effect. Works against any Confluent-compatible
 * registry.
 */
export class RegistryHttpClient {
  private readonly token: string | undefined;

  constructor(
    readonly url: string,
    options: { readonly token?: string } = {},
  ) {
    this.token = options.token ?? processToken;
  }

  async register(subject: string, schema: unknown): Promise<number> {
    const { id } = await this.call<{ id: number }>('POST', `/subjects/${encodeURIComponent(subject)}/versions`, {
      schema: JSON.stringify(schema),
    });
    return id;
  }

  /** Against the versions the subject's compatibility level requires; messages say why not. */
  async testCompatibility(subject: string, schema: unknown): Promise<{ compatible: boolean; messages: string[] }> {
    try {
      const result = await this.call<{ is_compatible: boolean; messages?: string[] }>(
        'POST',
        `/compatibility/subjects/${encodeURIComponent(subject)}/versions?verbose=true`,
        { schema: JSON.stringify(schema) },
      );
      return { compatible: result.is_compatible, messages: result.messages ?? [] };
    } catch (error) {
      // Registries that predate the version-less endpoint answer 40401 for a new subject.
      if (error instanceof SchemaRegistryError && error.errorCode === 40401) return { compatible: true, messages: [] };
      throw error;
    }
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers: {
          'Content-Type': CONTENT_TYPE,
          Accept: CONTENT_TYPE,
          ...(this.token === undefined ? {} : { Authorization: `Bearer ${this.token}` }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (cause) {
      // undici says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND) is in its cause.
      const inner = (cause as { cause?: { code?: string; message?: string } }).cause;
      const reason = inner?.code ?? inner?.message ?? (cause as Error).message;
      throw new SchemaRegistryError(50001, `schema registry at ${this.url} is unreachable: ${reason}`, { cause, retriable: true });
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const error = parsed as { error_code?: number; message?: string } | undefined;
      throw new SchemaRegistryError(
        error?.error_code ?? response.status,
        error?.message ?? `HTTP ${response.status} from ${method} ${path}`,
        {
          retriable: response.status >= 500,
        },
      );
    }
    return parsed as T;
  }
}
