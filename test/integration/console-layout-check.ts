import type { Page } from 'playwright-core';

/**
 * What is wrong with the console's layout as the browser laid it out, as readable sentences (an
 * empty list when nothing is). Checked: the page does not scroll sideways; panels do not overlap;
 * every element and every piece of text stays inside its panel, unless a scrolling box inside the
 * panel holds it (that box is checked instead); no box hides content it cannot scroll to (but an
 * ellipsis with the full text as its title); no word is broken across lines; and under the chart
 * panel no empty band taller than `maxGapUnderChartPx` is left before the next panel or the end
 * of the layout.
 */
export function layoutProblems(page: Page, maxGapUnderChartPx = 24): Promise<string[]> {
  return page.evaluate((maxGap) => {
    const problems: string[] = [];
    const label = (e: Element) => (e.id ? `#${e.id}` : `${e.tagName.toLowerCase()}${[...e.classList].map((c) => `.${c}`).join('')}`);
    const path = (e: Element) => {
      const parts: string[] = [];
      for (let x: Element | null = e; x && x !== document.body; x = x.parentElement) {
        parts.unshift(label(x));
        if (x.id) break;
      }
      return parts.join(' > ');
    };
    const clips = (e: Element) => {
      const style = getComputedStyle(e);
      return style.overflowX !== 'visible' || style.overflowY !== 'visible';
    };
    /** Whether a box between `e` and its panel clips or scrolls what `e` holds. */
    const heldByScroller = (e: Element, panel: Element) => {
      for (let a = e.parentElement; a && a !== panel; a = a.parentElement) if (clips(a)) return true;
      return false;
    };
    const outside = (r: DOMRect, box: DOMRect) => r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1;
    const text = (s: string) => JSON.stringify(s.trim().slice(0, 40));

    const width = document.documentElement.scrollWidth;
    if (width > window.innerWidth) problems.push(`the page scrolls sideways: ${width} px wide in a ${window.innerWidth} px window`);

    const panels = [...document.querySelectorAll('.topbar, .panel')].filter((p) => p.getClientRects().length > 0);
    const boxes = panels.map((p) => p.getBoundingClientRect());
    for (let i = 0; i < panels.length; i++) {
      for (let j = i + 1; j < panels.length; j++) {
        const [a, b] = [boxes[i]!, boxes[j]!];
        if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1) {
          problems.push(`${label(panels[i]!)} overlaps ${label(panels[j]!)}`);
        }
      }
    }

    panels.forEach((panel, p) => {
      const box = boxes[p]!;
      for (const e of panel.querySelectorAll('*')) {
        if (e.closest('.u-cursor-x, .u-cursor-y, .u-cursor-pt, .u-select, option')) continue; // pointer artefacts
        if (e.getClientRects().length === 0) continue; // not rendered (a closed <details>, display: none)
        const r = e.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) continue;
        if (!heldByScroller(e, panel) && outside(r, box)) problems.push(`${path(e)} leaves its panel ${label(panel)}`);
        const style = getComputedStyle(e);
        const hides = (style.overflowX === 'hidden' || style.overflowX === 'clip') && e.scrollWidth > e.clientWidth + 1;
        if (hides && !(style.textOverflow === 'ellipsis' && e.getAttribute('title'))) problems.push(`${path(e)} cuts off its content`);
      }
      const walker = document.createTreeWalker(panel, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const parent = node.parentElement!;
        if (!node.textContent?.trim() || parent.closest('option, textarea, script, style') || parent.getClientRects().length === 0) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        const r = range.getBoundingClientRect();
        if (r.width > 0 && !heldByScroller(parent, panel) && !clips(parent) && outside(r, box)) {
          problems.push(`text ${text(node.textContent)} in ${path(parent)} overflows its panel ${label(panel)}`);
        }
        for (const word of node.textContent.matchAll(/[\p{L}\p{N}_]+/gu)) {
          range.setStart(node, word.index!);
          range.setEnd(node, word.index! + word[0].length);
          const tops = new Set([...range.getClientRects()].filter((q) => q.width > 0).map((q) => Math.round(q.top)));
          if (tops.size > 1) problems.push(`the word ${text(word[0])} in ${path(parent)} is broken across lines`);
        }
      }
    });

    const chart = document.getElementById('chart-panel');
    if (chart) {
      const c = chart.getBoundingClientRect();
      const below = boxes.filter((b) => b.top >= c.bottom - 1 && b.left < c.right && c.left < b.right).map((b) => b.top);
      const layoutBottom = Math.max(...boxes.map((b) => b.bottom));
      const gap = (below.length ? Math.min(...below) : layoutBottom) - c.bottom;
      if (gap > maxGap) problems.push(`${Math.round(gap)} px are left empty under the chart panel`);
      const content = Math.max(...[...chart.children].filter((e) => e.getClientRects().length).map((e) => e.getBoundingClientRect().bottom));
      const inside = c.bottom - content;
      if (inside > maxGap + 12) problems.push(`${Math.round(inside)} px are left empty inside the chart panel, under its content`);
    }
    return problems;
  }, maxGapUnderChartPx);
}
