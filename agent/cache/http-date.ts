/**
 * HTTP-date (RFC 9110 §5.6.7) to epoch ms: IMF-fixdate and the two obsolete forms recipients
 * must accept (RFC 850, asctime). Anything else is undefined — unlike Date.parse, which reads
 * "2099" as a date and would keep a bogus Expires fresh for decades.
 */

const MONTHS = "JanFebMarAprMayJunJulAugSepOctNovDec";
const IMF_FIXDATE = /^[A-Z][a-z]{2}, (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const RFC_850 = /^[A-Z][a-z]{5,8}, (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const ASCTIME = /^[A-Z][a-z]{2} ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

export function parseHttpDate(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = text.trim();
  let match = IMF_FIXDATE.exec(value);
  if (match) return utc(match[3]!, match[2]!, match[1]!, match[4]!, match[5]!, match[6]!);
  match = RFC_850.exec(value);
  if (match) {
    // Two-digit years: 70–99 are the 1900s, the rest the 2000s (RFC 9110 asks for "not more
    // than 50 years ahead"; a fixed pivot gives the same answer until 2049).
    const yy = Number(match[3]);
    return utc(
      String(yy >= 70 ? 1900 + yy : 2000 + yy),
      match[2]!,
      match[1]!,
      match[4]!,
      match[5]!,
      match[6]!,
    );
  }
  match = ASCTIME.exec(value);
  if (match) return utc(match[6]!, match[1]!, match[2]!.trim(), match[3]!, match[4]!, match[5]!);
  return undefined;
}

function utc(year: string, month: string, day: string, hour: string, minute: string, second: string) {
  const m = MONTHS.indexOf(month);
  if (m < 0 || m % 3 !== 0) return undefined;
  const d = Number(day);
  const h = Number(hour);
  const min = Number(minute);
  const s = Number(second);
  if (h > 23 || min > 59 || s > 60) return undefined;
  const ms = Date.UTC(Number(year), m / 3, d, h, min, s);
  // Date.UTC rolls Feb 30 over into March; a date that does not exist is not a date.
  return new Date(ms).getUTCDate() === d ? ms : undefined;
}
