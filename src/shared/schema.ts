/**
 * A small vocabulary for checking JSON values against the protocol's types at the server's boundary. A schema
 * is typed by what it accepts (`Schema<T>` is invariant in `T`), so `object<T>({…})` must list every field of `T`
 * with exactly its type: a schema cannot drift from the interface it guards without a compile error.
 *
 * Pure: no Node APIs, no dependencies; both bundles may load it.
 */

/** The first value that does not fit: where (`folder`, `paths[2]`, `box`) and what was expected. */
export interface SchemaIssue {
  /** Dotted path of the field from the params' root; empty for the params themselves. */
  field: string;
  /** What the field must be, e.g. `a string`. */
  expected: string;
  /** What it was, e.g. `null`, `a number`. */
  got: string;
}

export interface Schema<T> {
  /** What a value must be, for people: `a string`, `an array of strings`. */
  readonly expected: string;
  /** True when the field may be absent from its object. */
  readonly optional: boolean;
  /** The first issue with `value` at `field`, or `undefined` when it fits. */
  check(value: unknown, field: string): SchemaIssue | undefined;
  /** Phantom: makes `Schema<T>` invariant in `T` (never set). */
  readonly __type?: (value: T) => T;
}

function schema<T>(expected: string, test: (value: unknown, field: string) => SchemaIssue | boolean): Schema<T> {
  return {
    expected,
    optional: false,
    check(value, field) {
      const result = test(value, field);
      if (result === true) return undefined;
      return result === false ? { field, expected, got: describe(value) } : result;
    },
  };
}

/** How a value is named in an issue. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length > 40 ? 'a string' : `the string ${JSON.stringify(value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return `an ${typeof value}`;
}

export const string: Schema<string> = schema('a string', (v) => typeof v === 'string');

export const boolean: Schema<boolean> = schema('true or false', (v) => typeof v === 'boolean');

/** A finite number that is not negative. */
export const nonNegativeNumber: Schema<number> = schema('a number ≥ 0', (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0);

/** A whole number ≥ 0 (terminal sizes). */
export const wholeNumber: Schema<number> = schema('a whole number ≥ 0', (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0);

/** One of a few strings. */
export function literal<const T extends string>(...values: T[]): Schema<T> {
  return schema(values.map((v) => JSON.stringify(v)).join(' or '), (v) => typeof v === 'string' && (values as string[]).includes(v));
}

export function array<T>(item: Schema<T>): Schema<T[]> {
  return schema(`an array of ${plural(item.expected)}`, (v, field) => {
    if (!Array.isArray(v)) return false;
    for (let i = 0; i < v.length; i++) {
      const issue = item.check(v[i], `${field}[${i}]`);
      if (issue) return issue;
    }
    return true;
  });
}

/** The field may be absent (JSON has no `undefined`; `null` is not absent). */
export function optional<T>(inner: Schema<T>): Schema<T | undefined> {
  return {
    expected: inner.expected,
    optional: true,
    check: (value, field) => (value === undefined ? undefined : inner.check(value, field)),
  };
}

type Shape<T> = { [K in keyof T]-?: Schema<T[K]> };

/**
 * A JSON object with these fields. Fields not listed are ignored, as LSP does, so a newer client's extra
 * optional field does not break an older server.
 */
export function object<T extends object>(shape: Shape<T>): Schema<T> {
  const fields = Object.entries(shape) as [string, Schema<unknown>][];
  return schema('an object', (v, field) => {
    if (!isPlainObject(v)) return false;
    for (const [key, fieldSchema] of fields) {
      const value = Object.prototype.hasOwnProperty.call(v, key) ? v[key] : undefined;
      const path = field ? `${field}.${key}` : key;
      if (value === undefined && !fieldSchema.optional) return { field: path, expected: fieldSchema.expected, got: 'nothing (it is required)' };
      const issue = fieldSchema.check(value, path);
      if (issue) return issue;
    }
    return true;
  });
}

/**
 * Any JSON object, whose fields the receiver validates itself with its own, more specific errors (box settings:
 * `invalid-setting` naming the `agentSandbox.*` key).
 */
export function checkedFurther<T extends object>(): Schema<T> {
  return schema('an object', isPlainObject);
}

/** One of several object shapes, told apart by the string in `key` (e.g. `op`). */
export function discriminated<T extends object, const K extends keyof T & string>(
  key: K,
  variants: { [V in T[K] & string]: Schema<Extract<T, Record<K, V>>> },
): Schema<T> {
  const names = Object.keys(variants);
  const tag = literal(...names);
  return schema('an object', (v, field) => {
    if (!isPlainObject(v)) return false;
    const path = field ? `${field}.${key}` : key;
    const issue = tag.check(v[key], path);
    if (issue) return issue;
    return (variants as Record<string, Schema<unknown>>)[v[key] as string].check(v, field) ?? true;
  });
}

/** Params of a request that takes none: absent, `null` or an object (its fields are ignored). */
export const noParams: Schema<void> = {
  expected: 'no params',
  optional: true,
  check: (value, field) =>
    value === undefined || value === null || isPlainObject(value) ? undefined : { field, expected: 'no params', got: describe(value) },
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function plural(expected: string): string {
  return expected.replace(/^an? (\w+)/, '$1s');
}
