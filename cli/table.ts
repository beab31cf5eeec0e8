/**
 * Human tables for coherentctl: a header row and left-aligned columns padded with spaces, the
 * way kubectl prints lists. Cells are single-line so a table stays readable and greppable.
 */

export interface Column<Row> {
  readonly header: string;
  readonly cell: (row: Row) => string | number | null | undefined;
}

export function formatTable<Row>(columns: readonly Column<Row>[], rows: readonly Row[]): string {
  const cells = rows.map((row) => columns.map((column) => singleLine(column.cell(row))));
  const widths = columns.map((column, index) =>
    cells.reduce((width, line) => Math.max(width, line[index]?.length ?? 0), column.header.length),
  );
  const lines = [columns.map((column) => column.header), ...cells].map((line) =>
    line
      .map((cell, index) => (index === line.length - 1 ? cell : cell.padEnd(widths[index] ?? 0)))
      .join("  ")
      .trimEnd(),
  );
  return lines.join("\n");
}

/** An absent value shows as "-" so it reads as absent, not as a gap between columns. */
function singleLine(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === "") return "-";
  return String(value).replace(/\s*\n\s*/g, " ");
}

/** One record as aligned `name:  value` lines, for showing a single object. */
export function formatFields(
  fields: ReadonlyArray<readonly [string, string | number | null | undefined]>,
): string {
  const width = fields.reduce((max, [name]) => Math.max(max, name.length + 1), 0);
  return fields.map(([name, value]) => `${`${name}:`.padEnd(width)}  ${singleLine(value)}`).join("\n");
}
