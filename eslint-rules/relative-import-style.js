// One import style: a relative import of one of our TypeScript modules names it without a suffix
// (`from '../net/emitter'`, not `'../net/emitter.js'`): the majority style, resolved the same by Vite, tsx and tsc
// ("moduleResolution": "Bundler"). A real .js file (eslint-rules/ itself) and `?raw` imports (WGSL text) keep their
// file name. `eslint --fix` drops the suffix.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const RELATIVE_JS = /^\.{1,2}\/.*\.js$/;

/** @type {import('eslint').Rule.RuleModule} */
export default {
  meta: {
    type: 'suggestion',
    fixable: 'code',
    docs: { description: "relative imports have no '.js' suffix" },
    messages: { suffix: "relative import '{{source}}' has a '.js' suffix: write '{{fixed}}'" },
    schema: [],
  },
  create(context) {
    const check = (node) => {
      const src = node.source;
      if (!src || src.type !== 'Literal' || typeof src.value !== 'string' || !RELATIVE_JS.test(src.value)) return;
      if (existsSync(resolve(dirname(context.filename), src.value))) return; // a JavaScript file: its name is its name
      const fixed = src.value.slice(0, -'.js'.length);
      context.report({
        node: src,
        messageId: 'suffix',
        data: { source: src.value, fixed },
        fix: (fixer) => fixer.replaceTextRange([src.range[0] + 1, src.range[1] - 1], fixed),
      });
    };
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check, ImportExpression: check };
  },
};
