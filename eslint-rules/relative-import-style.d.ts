// Types for the rule's JavaScript (loaded by eslint.config.js, imported by tests/lint).
import type { Rule } from 'eslint';

declare const rule: Rule.RuleModule;
export default rule;
