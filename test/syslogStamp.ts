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
