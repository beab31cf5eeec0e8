/**
 * A generated doc is hand-written text with generated regions between marker comments; the
 * generator rewrites only what is between a region's markers, so the prose around stays.
 */

const begin = (name: string) => `<!-- BEGIN GENERATED ${name}: npm run docs rewrites this part -->`;
const end = (name: string) => `<!-- END GENERATED ${name} -->`;

/** The document with each named region's content replaced; throws naming a region whose markers are missing. */
export function fillRegions(doc: string, file: string, regions: ReadonlyMap<string, string>): string {
  let out = doc;
  for (const [name, content] of regions) {
    const start = out.indexOf(begin(name));
    const stop = out.indexOf(end(name));
    if (start < 0 || stop < start) {
      throw new Error(`${file}: no generated region "${name}"; add the lines\n${begin(name)}\n${end(name)}`);
    }
    out = `${out.slice(0, start + begin(name).length)}\n\n${content.trim()}\n\n${out.slice(stop)}`;
  }
  return out;
}
