// Validators: the current set, each validator's recent activity (proposed,
// signed, missed, a strip of the last heights) and the proposer rotation.
import { el, append, replace } from '../dom';
import type { Ctx } from '../ctx';
import { blockLink, mono } from '../format';
import { errorBox, kvTable, loading, section, table } from '../ui';

type ValSet = { height: number; hash: string; totalPower: number; validators: { publicKey: string; power: number }[] };
type ActivityVal = { publicKey: string; power: number; proposed: number; signed: number; missed: number; missedHeights: number[] };
type Activity = { from: number; to: number; validators: ActivityVal[]; heights: { height: number; round: number; proposer: string; signers: string[]; finalCertificate?: boolean }[] };
type Status = { peers?: number; validator?: string | null };

const WINDOW = 100;
const STRIP = 50;

export async function renderValidators(ctx: Ctx, page: HTMLElement): Promise<void> {
  const summary = section('Validator set', loading());
  const activity = section('Activity', loading());
  const rotation = section('Proposer rotation', loading());
  append(
    page,
    el('h1', null, 'Validators'),
    el('div', { class: 'row' }, el('button', { type: 'button', onclick: () => void load(), 'data-testid': 'refresh' }, 'Refresh')),
    summary,
    activity,
    rotation,
  );

  async function load(): Promise<void> {
    const [vs, act, st] = await ctx.rpc.batch([
      { method: 'validator_getSet', params: [] },
      { method: 'validator_getActivity', params: [WINDOW] },
      { method: 'system_status', params: [] },
    ]);
    if (!ctx.alive()) return;
    const set = vs?.ok ? (vs.value as ValSet) : null;
    const status = st?.ok ? (st.value as Status) : null;
    if (set) {
      replace(
        summary,
        el('h2', null, 'Validator set'),
        kvTable([
          ['Validators', String(set.validators.length)],
          ['Total power', String(set.totalPower)],
          ['For height', String(set.height)],
          ['Set hash', mono(set.hash, { full: true })],
          ['Peers of this node', status ? String(status.peers ?? '?') : st && !st.ok ? errorBox(st.error) : '?'],
          ['This node', status?.validator ? mono(status.validator) : el('span', { class: 'muted' }, 'not a validator')],
        ]),
      );
    } else replace(summary, el('h2', null, 'Validator set'), errorBox(vs && !vs.ok ? vs.error : 'no answer'));

    if (!act || !act.ok) {
      const err = act && !act.ok ? act.error : 'no answer';
      // Without activity, still list the set so each validator has a row.
      replace(
        activity,
        el('h2', null, 'Activity'),
        errorBox(err, 'validator_getActivity'),
        set
          ? table(
              ['Validator', 'Power', 'Proposed', 'Signed', 'Missed'],
              set.validators.map((v) =>
                el('tr', { 'data-testid': 'validator-row', 'data-key': v.publicKey }, el('td', null, mono(v.publicKey)), el('td', { class: 'num' }, v.power), el('td', { class: 'num muted' }, '—'), el('td', { class: 'num muted' }, '—'), el('td', { class: 'num muted', 'data-testid': 'missed' }, '—')),
              ),
            )
          : null,
      );
      replace(rotation, el('h2', null, 'Proposer rotation'), el('p', { class: 'muted' }, 'Needs validator_getActivity.'));
      return;
    }
    const a = act.value as Activity;
    const heightsAsc = [...a.heights].sort((x, y) => x.height - y.height);
    const strip = heightsAsc.slice(-STRIP);
    const signersAt = new Map(a.heights.map((h) => [h.height, new Set(h.signers.map((s) => s.toLowerCase()))]));
    const proposerAt = new Map(a.heights.map((h) => [h.height, h.proposer.toLowerCase()]));
    const inSet = new Set((set?.validators ?? []).map((v) => v.publicKey.toLowerCase()));
    const rows = a.validators.map((v) => {
      const key = v.publicKey.toLowerCase();
      const missed = new Set(v.missedHeights);
      const cells = strip.map((h) => {
        const signed = signersAt.get(h.height)?.has(key) ?? false;
        const proposed = proposerAt.get(h.height) === key;
        const state = signed ? 'signed' : missed.has(h.height) ? 'missed' : 'absent';
        const tentative = h.finalCertificate === false ? ' (certificate not final yet)' : '';
        return el('span', { class: `cell ${state}${proposed ? ' proposer' : ''}`, title: `height ${h.height}: ${state}${proposed ? ', proposer' : ''}${tentative}` });
      });
      return el(
        'tr',
        { 'data-testid': 'validator-row', 'data-key': v.publicKey, class: v.missed > 0 ? 'has-missed' : '' },
        el('td', null, mono(v.publicKey), v.power === 0 || (inSet.size && !inSet.has(key)) ? el('span', { class: 'muted small' }, ' (not in the latest set)') : null),
        el('td', { class: 'num' }, v.power),
        el('td', { class: 'num' }, v.proposed),
        el('td', { class: 'num' }, v.signed),
        el('td', { class: v.missed > 0 ? 'num bad' : 'num', 'data-testid': 'missed' }, v.missed),
        el('td', null, el('div', { class: 'strip', 'aria-label': `last ${strip.length} heights` }, cells)),
      );
    });
    replace(
      activity,
      el('h2', null, `Activity over heights ${a.from}–${a.to}`),
      el('p', { class: 'muted small' }, 'Strip: the last ', String(strip.length), ' heights, oldest left; ', el('span', { class: 'cell signed inline' }), ' signed the commit, ', el('span', { class: 'cell missed inline' }), ' missed, ', el('span', { class: 'cell absent inline' }), ' not in the set; outlined: proposer.'),
      table(['Validator', 'Power', 'Proposed', 'Signed', 'Missed', 'Recent heights'], rows, { testid: 'validators', empty: 'No validators.' }),
    );
    const recent = a.heights.slice(0, 30);
    replace(
      rotation,
      el('h2', null, 'Proposer rotation ', el('span', { class: 'muted small' }, 'newest first')),
      table(
        ['Height', 'Round', 'Proposer', 'Signers'],
        recent.map((h) => el('tr', null, el('td', null, blockLink(h.height)), el('td', { class: h.round > 0 ? 'num bad' : 'num' }, h.round), el('td', null, mono(h.proposer)), el('td', { class: 'num' }, `${h.signers.length}${set ? ` / ${set.validators.length}` : ''}`))),
        { testid: 'rotation', empty: 'No heights.' },
      ),
    );
  }
  await load();
}
