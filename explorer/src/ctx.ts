// What a page gets: the RPC client and a lifetime scoped to the route.
import type { Head, Rpc } from './rpc';

export type Ctx = {
  rpc: Rpc;
  /** Latest committed height seen (from status or the head subscription). */
  latest(): number | null;
  /** Still the page on screen? (false once the user navigated away) */
  alive(): boolean;
  /** New heads while this page is shown. */
  onHead(fn: (h: Head) => void): void;
  /** Run fn every `ms` while this page is shown and the tab is visible. */
  every(ms: number, fn: () => void | Promise<void>): void;
  /** Register cleanup for when the page goes away. */
  onLeave(fn: () => void): void;
  navigate(hash: string, replace?: boolean): void;
};
