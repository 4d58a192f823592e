// The ranking: ordered tiers of replies (a tier with two or more is a tie), best first, plus
// the replies not ranked yet. Drag chips between tiers, into the gaps (a new tier there) or
// back to "not ranked"; or use the keyboard moves below. The DOM is rebuilt from `tiers` after
// every change, so what is shown is always exactly what will be submitted.

import Sortable from "sortablejs";

export class Ranking {
  constructor({ tiersEl, unrankedEl, labels, onChange, onPick }) {
    this.tiersEl = tiersEl;
    this.unrankedEl = unrankedEl;
    this.labels = labels; // {candidate id: "A", ...} in display order
    this.onChange = onChange;
    this.onPick = onPick;
    this.tiers = [];
    this.sortables = [];
  }

  get ids() {
    return Object.keys(this.labels);
  }

  get unranked() {
    const ranked = new Set(this.tiers.flat());
    return this.ids.filter((id) => !ranked.has(id));
  }

  get complete() {
    return this.unranked.length === 0;
  }

  set(tiers) {
    const known = new Set(this.ids);
    const seen = new Set();
    this.tiers = (Array.isArray(tiers) ? tiers : [])
      .map((tier) => (Array.isArray(tier) ? tier : []).filter((id) => known.has(id) && !seen.has(id) && seen.add(id)))
      .filter((tier) => tier.length);
    this.render();
  }

  tierOf(id) {
    return this.tiers.findIndex((tier) => tier.includes(id));
  }

  change(tiers) {
    this.tiers = tiers.filter((tier) => tier.length);
    this.render();
    this.onChange();
  }

  // Keyboard moves --------------------------------------------------------------------------

  moveUp(id) {
    const t = this.tiers.map((tier) => [...tier]);
    const at = this.tierOf(id);
    if (at < 0) t.push([id]); // rank it next, below everything ranked so far
    else if (t[at].length > 1) {
      t[at] = t[at].filter((x) => x !== id); // leave the tie, just above it
      t.splice(at, 0, [id]);
    } else if (at > 0) [t[at - 1], t[at]] = [t[at], t[at - 1]];
    this.change(t);
  }

  moveDown(id) {
    const t = this.tiers.map((tier) => [...tier]);
    const at = this.tierOf(id);
    if (at < 0) return;
    if (t[at].length > 1) {
      t[at] = t[at].filter((x) => x !== id); // leave the tie, just below it
      t.splice(at + 1, 0, [id]);
    } else if (at < t.length - 1) [t[at], t[at + 1]] = [t[at + 1], t[at]];
    else t.splice(at, 1); // below the last tier: not ranked any more
    this.change(t);
  }

  tieUp(id) {
    const t = this.tiers.map((tier) => tier.filter((x) => x !== id));
    const at = this.tierOf(id);
    if (at === 0) return;
    const target = at < 0 ? t.length - 1 : at - 1;
    if (target < 0) t.push([id]);
    else t[target].push(id);
    this.change(t);
  }

  // Drawing and dragging ------------------------------------------------------------------

  chip(id) {
    const el = document.createElement("span");
    el.className = "chip";
    el.dataset.cid = id;
    el.textContent = this.labels[id];
    el.title = `Reply ${this.labels[id]}`;
    el.addEventListener("click", () => this.onPick(id));
    return el;
  }

  list(className, attrs, ids) {
    const el = document.createElement("div");
    el.className = className;
    Object.assign(el.dataset, attrs);
    for (const id of ids) el.append(this.chip(id));
    return el;
  }

  render() {
    for (const s of this.sortables) s.destroy();
    this.sortables = [];
    const rows = [];
    this.tiers.forEach((tier, i) => {
      rows.push(this.list("gap", { list: "gap", at: String(i) }, []));
      const row = document.createElement("div");
      row.className = "tier" + (tier.length > 1 ? " tie" : "");
      const rank = document.createElement("span");
      rank.className = "tier-rank";
      rank.textContent = tier.length > 1 ? `${i + 1} (tie)` : String(i + 1);
      row.append(rank, this.list("chips", { list: "tier", index: String(i) }, tier));
      rows.push(row);
    });
    const last = this.list("gap end", { list: "gap", at: String(this.tiers.length) }, []);
    last.dataset.hint = this.tiers.length ? "drop here for a new tier" : "drag replies here, best first";
    rows.push(last);
    this.tiersEl.replaceChildren(...rows);
    this.unrankedEl.replaceChildren(...this.unranked.map((id) => this.chip(id)));
    const lists = [...this.tiersEl.querySelectorAll(".chips, .gap"), this.unrankedEl];
    for (const el of lists) {
      this.sortables.push(
        Sortable.create(el, {
          group: "ranking",
          animation: 120,
          onStart: () => this.tiersEl.classList.add("dragging"),
          onEnd: () => {
            this.tiersEl.classList.remove("dragging");
            this.readDom();
          },
        }),
      );
    }
  }

  readDom() {
    // Chips dropped into a gap form a new tier there; empty tiers disappear.
    const tiers = [];
    for (const el of this.tiersEl.querySelectorAll(".chips, .gap")) {
      const ids = [...el.querySelectorAll(".chip")].map((c) => c.dataset.cid);
      if (ids.length) tiers.push(ids);
    }
    this.change(tiers);
  }
}
