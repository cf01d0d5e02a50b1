import { SluiceError, type SluiceErrorOptions } from '../common/errors.js';

/** A ClickHouse exception, with ClickHouse's numeric code (62 syntax error, 60 unknown table, ...). */
export class ClickHouseError extends SluiceError {
  readonly clickhouseCode: number;

  constructor(clickhouseCode: number, message: string, options: SluiceErrorOptions = {}) {
    super(`SLUICE_CLICKHOUSE_${clickhouseCode}`, message, options);
    this.clickhouseCode = clickhouseCode;
  }

  /** HTTP status as ClickHouse's HTTP interface answers for this code. */
  get httpStatus(): number {
    if ([60, 81, 36].includes(this.clickhouseCode)) return 404; // unknown table, database, bad argument
    if ([62, 47, 46, 43, 27, 6, 38, 117].includes(this.clickhouseCode)) return 400; // syntax, unknown identifier/function, type and parse errors
    if ([164, 497, 516].includes(this.clickhouseCode)) return 403; // readonly, access denied, authentication
    if (this.clickhouseCode === 202) return 503; // too many simultaneous queries
    return 500;
  }
}

/** Turns an engine's error text ("Code: 62. DB::Exception: ...") into a ClickHouseError. */
export function parseClickHouseError(error: unknown): ClickHouseError {
  const text = error instanceof Error ? error.message : String(error);
  const message = text.replace(/^Query failed:\s*/, '').trim();
  const code = Number(/Code:\s*(\d+)/.exec(message)?.[1] ?? 1000);
  return new ClickHouseError(code, message, { cause: error });
}
