/**
 * Just enough YAML to write a `%%federate` cell body: scalars and flow lists that PyYAML (the
 * magic's parser) reads back as written, and a merge of a package's example body with the keys
 * the sidebar infers. Pure functions; no YAML parser is shipped to the browser for this.
 */

// What PyYAML reads as something other than a string; it keeps y and n as text.
const YAML_SPECIAL = /^(yes|no|true|false|on|off|null|~)$/i;
const YAML_NUMBER = /^[-+]?(\d[\d_]*)?(\.\d*)?([eE][-+]?\d+)?$/;

/** A YAML scalar: plain when it would read back as the same string, else single-quoted. */
export function yamlScalar(value: string): string {
  const plain =
    /^[A-Za-z_][A-Za-z0-9_\-.]*$/.test(value) &&
    !YAML_SPECIAL.test(value) &&
    !YAML_NUMBER.test(value);
  return plain ? value : `'${value.replace(/'/g, "''")}'`;
}

/** `key: [a, b, …]`, wrapped so no line passes `width` characters. */
export function flowList(key: string, items: ReadonlyArray<string>, width = 96): string {
  const lines: string[] = [];
  let line = `${key}: [`;
  items.forEach((item, i) => {
    const piece = yamlScalar(item) + (i < items.length - 1 ? ',' : ']');
    if (line.length + piece.length + 1 > width && !line.endsWith('[')) {
      lines.push(line);
      line = '  ' + piece;
    } else {
      line += (line.endsWith('[') ? '' : ' ') + piece;
    }
  });
  if (items.length === 0) {
    line += ']';
  }
  lines.push(line);
  return lines.join('\n');
}

/** One top-level entry of a block mapping: its key line and the indented lines under it. */
export interface IBodyEntry {
  /** The key, unquoted; `null` for comments and blank lines before the first key. */
  key: string | null;
  /** The entry's text, one string a line. */
  lines: string[];
}

const KEY_LINE = /^([A-Za-z_][\w.-]*|'(?:[^']|'')*'|"[^"\\]*")[ \t]*:(?:[ \t]|$)/;

function unquoteKey(key: string): string {
  if (key.startsWith("'")) {
    return key.slice(1, -1).replace(/''/g, "'");
  }
  return key.startsWith('"') ? key.slice(1, -1) : key;
}

/**
 * Split the text of a YAML block mapping into its top-level entries.
 *
 * Everything indented (nested mappings, block scalars such as `contract: |`, wrapped flow
 * lists), blank lines and comments stays with the key above it, so entries can be dropped or
 * reordered and the text stays valid YAML.
 *
 * @returns the entries, or `null` when the text is not a plain block mapping (a document
 * marker, a top-level list or flow mapping, a line that is not `key: …`)
 */
export function topLevelEntries(text: string): IBodyEntry[] | null {
  const entries: IBodyEntry[] = [];
  for (const line of text.replace(/\r\n?/g, '\n').split('\n')) {
    const match = KEY_LINE.exec(line);
    if (match) {
      entries.push({ key: unquoteKey(match[1]), lines: [line] });
      continue;
    }
    const continues = line.trim() === '' || line.trimStart().startsWith('#') || /^[ \t]/.test(line);
    if (!continues) {
      return null;
    }
    if (entries.length === 0) {
      if (line.trim() !== '' && !line.trimStart().startsWith('#')) {
        return null; // indented text before any key
      }
      entries.push({ key: null, lines: [] });
    }
    entries[entries.length - 1].lines.push(line);
  }
  return entries;
}

/**
 * A cell body: the `inferred` entries first, then the `example`'s entries except those with the
 * same keys (comments before the example's first key stay on top).
 *
 * An example that is not a plain block mapping is left out rather than risk a body the magic
 * cannot read: the package's defaults then apply.
 *
 * @returns the body, ending with a newline (empty when there is nothing to write)
 */
export function mergeBody(example: string, inferred: ReadonlyArray<IBodyEntry>): string {
  const entries = topLevelEntries(example) ?? [];
  const replaced = new Set(inferred.map(e => e.key));
  const preamble = entries.filter(e => e.key === null);
  const rest = entries.filter(e => e.key !== null && !replaced.has(e.key));
  const lines = [...preamble, ...inferred, ...rest].flatMap(e => e.lines);
  while (lines.length > 0 && lines[lines.length - 1].trim() === '') {
    lines.pop();
  }
  while (lines.length > 0 && lines[0].trim() === '') {
    lines.shift();
  }
  return lines.length > 0 ? lines.join('\n') + '\n' : '';
}

/** An entry from one line of text, e.g. `entry('target', 'target: y')`. */
export function entry(key: string, text: string): IBodyEntry {
  return { key, lines: text.split('\n') };
}
