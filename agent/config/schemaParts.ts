// Schema pieces the config sections share (configSchema.ts, remediationSchema.ts).
import * as v from 'valibot';
import { parseDuration } from './duration.ts';

/** setTimeout's limit (2^31 - 1 ms, about 24.8 days): beyond it Node fires after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

export function duration(min: number) {
  return v.pipe(
    v.string(),
    v.check(
      (text) => {
        const ms = parseDuration(text);
        return ms !== undefined && ms >= min && ms <= MAX_TIMER_MS;
      },
      (issue) => {
        const ms = parseDuration(issue.input);
        if (ms === undefined)
          return `invalid duration ${JSON.stringify(issue.input)} (use e.g. 500ms, 30s, 5m, 1h)`;
        return ms < min ? `must be at least ${min}ms` : 'must be at most 24d';
      },
    ),
  );
}

/** A whole number option from min to max, with its default. */
export const count = (min: number, max: number, fallback: number) =>
  v.optional(
    v.pipe(
      v.number(),
      v.integer('must be a whole number'),
      v.minValue(min, `must be at least ${min}`),
      v.maxValue(max, `must be at most ${max}`),
    ),
    fallback,
  );

/**
 * The keys a rule between sibling settings names, by its requirement function: an error of such
 * a rule is about every one of them, and loadConfig names where each value came from (the file
 * may set one and the built-in defaults the other).
 */
export const crossFieldKeys = new WeakMap<object, readonly string[]>();

/**
 * A rule between sibling settings of one section (object), e.g. retryPeriod < 2/3
 * leaseDuration. Its issue is on the section, with the keys it involves (crossFieldKeys).
 */
export function crossField<T>(
  keys: readonly [string, string, ...string[]],
  requirement: (section: T) => boolean,
  message: string,
) {
  crossFieldKeys.set(requirement, keys);
  return v.check(requirement, message);
}
