// Test helpers for the report package: a small strict XML reader (balanced tags, quoted unique
// attributes, only known entities, no stray `<`) and queries over the tree it builds, so tests
// count and measure elements rather than match strings — a wrong number of marks, an unescaped
// label or a NaN coordinate fails a test rather than a viewer.

import { expect } from 'vitest';

export interface XmlNode {
  readonly name: string;
  readonly attrs: Record<string, string>;
  readonly children: XmlNode[];
  /** The element's own character data, entities left as written. */
  text: string;
}

const HTML_VOID = new Set(['meta', 'br', 'hr', 'img', 'link', 'input']);
const ENTITY = /&(?!(?:amp|lt|gt|quot|apos|#39|#\d+|#x[0-9a-fA-F]+);)/;
const TAG = /<\/([A-Za-z][\w:.-]*)\s*>|<([A-Za-z][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*="[^"<]*")*)\s*(\/?)>|<!--[\s\S]*?-->|<!DOCTYPE[^>]*>/y;
const ATTR = /\s+([A-Za-z_][\w:.-]*)="([^"<]*)"/g;

/** Parses a document; throws on anything not well-formed. `html` allows void elements like <meta>. */
export function parseXml(source: string, { html = false } = {}): XmlNode {
  const root: XmlNode = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: XmlNode[] = [root];
  let pos = 0;
  const checkText = (chunk: string, where: number) => {
    if (ENTITY.test(chunk)) throw new Error(`bare & near offset ${where}: ${JSON.stringify(chunk.slice(0, 60))}`);
  };
  while (pos < source.length) {
    const next = source.indexOf('<', pos);
    const chunk = next < 0 ? source.slice(pos) : source.slice(pos, next);
    checkText(chunk, pos);
    if (/[^\s]/.test(chunk) && stack.length === 1) throw new Error(`text outside the root element at ${pos}`);
    stack[stack.length - 1]!.text += chunk;
    if (next < 0) break;
    TAG.lastIndex = next;
    const m = TAG.exec(source);
    if (!m) throw new Error(`malformed tag at offset ${next}: ${JSON.stringify(source.slice(next, next + 60))}`);
    pos = TAG.lastIndex;
    const [, closing, opening, attrText, selfClosing] = m;
    if (closing) {
      const open = stack.pop();
      if (!open || open.name !== closing || stack.length === 0) throw new Error(`</${closing}> closes <${open?.name}> at offset ${next}`);
    } else if (opening) {
      const attrs: Record<string, string> = {};
      for (const a of (attrText ?? '').matchAll(ATTR)) {
        if (a[1]! in attrs) throw new Error(`duplicate attribute ${a[1]} on <${opening}>`);
        checkText(a[2]!, next);
        attrs[a[1]!] = a[2]!;
      }
      const node: XmlNode = { name: opening, attrs, children: [], text: '' };
      stack[stack.length - 1]!.children.push(node);
      if (!selfClosing && !(html && HTML_VOID.has(opening))) stack.push(node);
    }
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (root.children.length !== 1) throw new Error(`expected one root element, got ${root.children.length}`);
  return root.children[0]!;
}

export function descendants(node: XmlNode, name?: string): XmlNode[] {
  const found: XmlNode[] = [];
  const walk = (n: XmlNode) => {
    for (const c of n.children) {
      if (name === undefined || c.name === name) found.push(c);
      walk(c);
    }
  };
  walk(node);
  return found;
}

export function byClass(node: XmlNode, cls: string): XmlNode[] {
  return descendants(node).filter((n) => (n.attrs.class ?? '').split(' ').includes(cls));
}

export function onlyByClass(node: XmlNode, cls: string): XmlNode {
  const found = byClass(node, cls);
  expect(found, `exactly one .${cls}`).toHaveLength(1);
  return found[0]!;
}

/** Parses an SVG document and checks what every chart must satisfy. */
export function checkSvg(svg: string): XmlNode {
  const root = parseXml(svg);
  expect(root.name).toBe('svg');
  expect(root.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
  expect(root.attrs.viewBox).toMatch(/^0 0 [\d.]+ [\d.]+$/);
  expect(svg).not.toMatch(/NaN|Infinity|undefined|null|\[object/);
  return root;
}

export const num = (n: XmlNode, attr: string) => Number(n.attrs[attr]);

/** A small deterministic generator, so the property tests repeat exactly. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export const NASTY = `<b>&"'`;
export const NASTY_ESCAPED = '&lt;b&gt;&amp;&quot;&#39;';
