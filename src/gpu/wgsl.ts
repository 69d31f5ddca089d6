// The one variant mechanism for WGSL: a kernel's source is a template specialised per variant, and the bindings an
// entry point uses are read from the specialised source (never restated in TypeScript).
//
// Template directives (each on its own line; inside a `//` comment so the file stays readable as WGSL):
//   //#define NAME value   a knob with its default (a variant may override only declared knobs)
//   //#if NAME  /  //#if !NAME  /  //#else  /  //#endif    keep or drop lines (NAME: a true/false knob; nests)
//   {{NAME}}              replaced by the knob's value (e.g. `@workgroup_size({{WG}})`)
// A scalar/vec4 pair is one entry point under `//#if VEC4` (see `widthDefines`), not two written twice.
/** How a kernel reads one binding: a uniform block, a read-only or a read-write storage buffer, or a
 *  `texture_2d<f32>` read with textureLoad (an unfilterable-float sampled texture: rgba32float). */
export type BindingKind = 'uniform' | 'read' | 'rw' | 'texture';

export type DefineValue = string | number | boolean;
export type Defines = Readonly<Record<string, DefineValue>>;

/** Element width of a kernel's vectorised operands: 4 reads vec4f (needs 16-byte aligned rows), 1 reads f32. */
export type Width = 1 | 4;

/** The knob every width-templated shader declares: `//#define VEC4 false`. */
export function widthDefines(width: Width): { VEC4: boolean } {
  return { VEC4: width === 4 };
}

const DIRECTIVE = /^\s*\/\/#(define|if|else|endif)\b\s*(.*)$/;

/** Specialises a template for one variant. `where` names the kernel in errors. */
export function specialise(source: string, overrides: Defines, where: string): string {
  const lines = source.split('\n');
  const defaults: Record<string, DefineValue> = {};
  for (const line of lines) {
    const m = DIRECTIVE.exec(line);
    if (m?.[1] !== 'define') continue;
    const [name, ...rest] = m[2].trim().split(/\s+/);
    const raw = rest[0] ?? '';
    if (!name || !raw) throw new Error(`${where}: malformed //#define: ${line.trim()}`);
    defaults[name] = raw === 'true' ? true : raw === 'false' ? false : /^\d+$/.test(raw) ? Number(raw) : raw;
  }
  for (const k of Object.keys(overrides)) {
    if (!(k in defaults)) throw new Error(`${where}: variant sets ${k}, which the shader does not declare (//#define ${k} ...)`);
  }
  const defs: Record<string, DefineValue> = { ...defaults, ...overrides };
  const out: string[] = [];
  // Stack of (this block is kept, an enclosing block is dropped).
  const stack: { keep: boolean; parentDropped: boolean }[] = [];
  const dropped = () => stack.some((s) => !s.keep);
  lines.forEach((line, i) => {
    const m = DIRECTIVE.exec(line);
    if (m && m[1] !== 'define') {
      if (m[1] === 'if') {
        const neg = m[2].trim().startsWith('!');
        const name = m[2].trim().replace(/^!/, '').split(/\s+/)[0];
        const v = defs[name];
        if (typeof v !== 'boolean') throw new Error(`${where}: line ${i + 1}: //#if ${name} needs a true/false //#define`);
        stack.push({ keep: neg ? !v : v, parentDropped: dropped() });
      } else if (m[1] === 'else') {
        const top = stack.at(-1);
        if (!top) throw new Error(`${where}: line ${i + 1}: //#else without //#if`);
        top.keep = !top.keep;
      } else if (!stack.pop()) {
        throw new Error(`${where}: line ${i + 1}: //#endif without //#if`);
      }
      return;
    }
    if (m || dropped()) return;
    out.push(
      line.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
        if (!(name in defs)) throw new Error(`${where}: line ${i + 1}: {{${name}}} has no //#define`);
        return String(defs[name]);
      }),
    );
  });
  if (stack.length > 0) throw new Error(`${where}: //#if without //#endif`);
  return out.join('\n');
}

export interface BindingDecl {
  binding: number;
  name: string;
  kind: BindingKind;
}

const BINDING =
  /@group\(\s*0\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var\s*<\s*(uniform|storage\s*,\s*read_write|storage\s*,\s*read|storage)\s*>\s*([A-Za-z_]\w*)/g;
const TEXTURE_BINDING = /@group\(\s*0\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var\s+([A-Za-z_]\w*)\s*:\s*texture_2d\s*<\s*f32\s*>/g;
const FN = /\bfn\s+([A-Za-z_]\w*)\s*\(/g;
const IDENT = /(?<![\w.])[A-Za-z_]\w*/g;
const LOCAL = /\b(?:let|var|const)\s+([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*:/g;

function stripComments(code: string): string {
  return code.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, '');
}

/** Function name -> its text from `fn` to the closing brace. */
function functions(code: string): Map<string, string> {
  const fns = new Map<string, string>();
  for (const m of code.matchAll(FN)) {
    const open = code.indexOf('{', m.index);
    let depth = 0;
    let end = open;
    for (; end < code.length; end++) {
      if (code[end] === '{') depth++;
      else if (code[end] === '}' && --depth === 0) break;
    }
    fns.set(m[1], code.slice(m.index, end + 1));
  }
  return fns;
}

/**
 * The group-0 bindings `entry` statically uses (directly or through the functions it calls), ordered by binding
 * number: what WebGPU's `layout: 'auto'` would derive. They must be numbered 0..n-1 without gaps (the runtime binds
 * them in that order), and a local may not shadow a binding's name (the use would be miscounted).
 */
export function entryBindings(rawCode: string, entry: string, where: string): BindingDecl[] {
  const code = stripComments(rawCode);
  const decls = [...code.matchAll(BINDING)].map((m) => ({
    binding: Number(m[1]),
    name: m[3],
    kind: (m[2] === 'uniform' ? 'uniform' : m[2].includes('read_write') ? 'rw' : 'read') as BindingKind,
  }));
  for (const m of code.matchAll(TEXTURE_BINDING)) decls.push({ binding: Number(m[1]), name: m[2], kind: 'texture' });
  const byName = new Map(decls.map((d) => [d.name, d]));
  const fns = functions(code);
  if (!fns.has(entry)) throw new Error(`${where}: entry point ${entry} not found`);
  const used = new Set<string>();
  const seen = new Set<string>([entry]);
  const todo = [entry];
  for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
    const text = fns.get(f) ?? '';
    for (const m of text.matchAll(LOCAL)) {
      const local = m[1] ?? m[2];
      if (local && byName.has(local)) throw new Error(`${where}: ${f} declares ${local}, shadowing the binding of that name`);
    }
    for (const [id] of text.matchAll(IDENT)) {
      if (byName.has(id)) used.add(id);
      else if (fns.has(id) && !seen.has(id)) {
        seen.add(id);
        todo.push(id);
      }
    }
  }
  const out = decls.filter((d) => used.has(d.name)).sort((a, b) => a.binding - b.binding);
  out.forEach((d, i) => {
    if (d.binding !== i) {
      throw new Error(`${where}: bindings used by ${entry} are ${out.map((x) => `${x.binding} ${x.name}`).join(', ')}: must be 0..${out.length - 1}`);
    }
  });
  return out;
}
