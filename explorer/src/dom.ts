// The only way this app builds DOM. Every string child becomes a text node
// (never parsed as HTML), and attributes come from a fixed allowlist; `href`
// is only ever one of our own `#/...` routes. Chain data is untrusted: it
// goes through here or through `textContent`, nothing else.

export type Child = Node | string | number | bigint | null | undefined | false | Child[];

const ALLOWED_ATTRS = new Set([
  'class',
  'href',
  'title',
  'id',
  'type',
  'placeholder',
  'aria-label',
  'aria-live',
  'role',
  'name',
  'for',
  'rows',
  'colspan',
  'spellcheck',
  'autocomplete',
  'inputmode',
  'data-testid',
  'data-height',
  'data-key',
  'data-state',
]);

const BOOLEAN_ATTRS = new Set(['open', 'disabled', 'hidden', 'required']);

export type Attrs = {
  [name: string]: string | number | boolean | null | undefined | ((ev: Event) => void);
};

/** A route of this app: `#/` followed by path segments we built. */
export function isRouteHref(v: string): boolean {
  return /^#\/[A-Za-z0-9/._~:%-]*$/.test(v);
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (typeof value === 'function') {
        if (!name.startsWith('on')) throw new Error(`not an event: ${name}`);
        node.addEventListener(name.slice(2).toLowerCase(), value);
        continue;
      }
      if (BOOLEAN_ATTRS.has(name)) {
        if (value) node.setAttribute(name, '');
        continue;
      }
      if (!ALLOWED_ATTRS.has(name)) throw new Error(`attribute not allowed: ${name}`);
      const text = String(value);
      if (name === 'href' && !isRouteHref(text)) {
        // Not one of our routes: leave the link inert rather than follow it.
        continue;
      }
      node.setAttribute(name, text);
    }
  }
  append(node, ...children);
  return node;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, ...c);
    else if (c instanceof Node) parent.appendChild(c);
    else parent.appendChild(document.createTextNode(String(c)));
  }
}

/** Replace all children of `parent`. */
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, ...children);
}

export function clear(parent: Node): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
}
