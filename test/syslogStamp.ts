import { promises as fs } from 'node:fs';
import path from 'node:path';
import { REPO } from './helpers.ts';

// rsyslog's time stamp ("Nov  2 14:05:09": no year, no zone) for a moment in a host's zone, so
// tests can write syslog lines "as if logged now" that the agent reads back in that zone.
export function syslogStamp(zone: string, time = new Date()): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(time)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.month} ${String(parts.day).padStart(2, ' ')} ${parts.hour}:${parts.minute}:${parts.second}`;
}

/** The seed's NotReady log (test/fixtures/logs/seed-notready.log), every line stamped now. */
export async function seedLinesNow(zone: string): Promise<string> {
  const text = await fs.readFile(
    path.join(REPO, 'test', 'fixtures', 'logs', 'seed-notready.log'),
    'utf8',
  );
  return text.replace(/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d/gm, syslogStamp(zone));
}
