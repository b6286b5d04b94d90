// Bundle the notebooks shipped in `notebooks/` into the extension, so the Launcher can copy them
// into the user's folder without a server route. Writes `labextension/src/_notebooks.json`
// (generated; not committed): [{file, title, description, notebook}], quickstart first.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const folder = join(root, 'notebooks');
const out = join(root, 'labextension', 'src', '_notebooks.json');

function text(cell) {
  return Array.isArray(cell.source) ? cell.source.join('') : String(cell.source ?? '');
}

function describe(file, nb) {
  const markdown = (nb.cells ?? []).filter(c => c.cell_type === 'markdown').map(text);
  const first = markdown[0] ?? '';
  const heading = first.match(/^#\s+(.+)$/m);
  const paragraph = first.split('\n').find(l => l.trim() && !l.startsWith('#')) ?? '';
  return {
    title: heading ? heading[1].trim() : file.replace(/\.ipynb$/, ''),
    description: paragraph.replace(/[*_`]/g, '').trim().slice(0, 200)
  };
}

let files = [];
try {
  files = readdirSync(folder).filter(f => f.endsWith('.ipynb')).sort();
} catch {
  console.warn(`bundle-notebooks: no ${folder}; the Launcher will offer no notebooks`);
}
files.sort((a, b) => (b === 'quickstart.ipynb') - (a === 'quickstart.ipynb'));
const notebooks = files.map(file => {
  const nb = JSON.parse(readFileSync(join(folder, file), 'utf8'));
  for (const cell of nb.cells ?? []) {
    // Ship clean templates: no outputs, no execution counts from whoever saved them last.
    if (cell.cell_type === 'code') {
      cell.outputs = [];
      cell.execution_count = null;
    }
  }
  return { file, ...describe(file, nb), notebook: nb };
});
writeFileSync(out, JSON.stringify(notebooks) + '\n');
console.log(`bundle-notebooks: ${notebooks.map(n => n.file).join(', ') || 'none'}`);
