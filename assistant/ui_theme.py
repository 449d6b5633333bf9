"""Look and page script of the app: a calm, WCAG AA theme with local fonts, and page behaviour.

No web fonts are fetched: the page must work offline and load nothing from third parties.
Colours meet WCAG 2.1 AA on the backgrounds they sit on: 4.5:1 for text, 3:1 for the borders
of controls (the ratios are noted beside each colour, light mode then dark). The page script
adds the ARIA that Gradio's components have no parameter for, and opens clicked citations.
Below 640 px (``PHONE``) the layout is a phone's: every tab on one line, the question box on the
first screen, the grid as one card per element, and a tapped passage scrolled into full view.
"""

from __future__ import annotations

import json

import gradio as gr

THEME = gr.themes.Soft(
    primary_hue="teal",
    secondary_hue="slate",
    neutral_hue="slate",
    radius_size="md",
    font=[
        "system-ui",
        "-apple-system",
        "Segoe UI",
        "Roboto",
        "Helvetica Neue",
        "Arial",
        "sans-serif",
    ],
    font_mono=["ui-monospace", "SFMono-Regular", "Consolas", "Liberation Mono", "monospace"],
).set(
    # secondary text (subtitle, profile line): slate-600 on slate-50, 7.2:1
    body_text_color_subdued="*neutral_600",
    body_text_color_subdued_dark="*neutral_300",
    input_placeholder_color="*neutral_500",  # 4.8:1 on white
    input_placeholder_color_dark="*neutral_400",
    # white on teal-700 5.5:1 (teal-800 when hovered, 7.6:1)
    button_primary_background_fill="*primary_700",
    button_primary_background_fill_dark="*primary_700",
    button_primary_background_fill_hover="*primary_800",
    button_primary_background_fill_hover_dark="*primary_800",
    # labels of inputs and tier names: teal-800 on teal-100 6.7:1; white on teal-800 7.6:1
    block_label_text_color="*primary_800",
    block_title_text_color="*primary_800",
    block_label_background_fill_dark="*primary_800",
    block_title_background_fill_dark="*primary_800",
    link_text_color="*primary_700",  # 5.2:1 on slate-50
    link_text_color_hover="*primary_800",
    link_text_color_active="*primary_800",
    link_text_color_visited="*primary_700",
    link_text_color_dark="*primary_300",
    link_text_color_hover_dark="*primary_200",
    link_text_color_active_dark="*primary_200",
    link_text_color_visited_dark="*primary_300",
    # an unticked box must be seen: slate-500 on white 4.8:1
    checkbox_border_color="*neutral_500",
    checkbox_border_color_dark="*neutral_300",  # 5.1:1 on the slate-600 of its label
    # a ticked item: white on teal-700 5.5:1 (teal-500 was 2.5:1)
    checkbox_label_background_fill_selected="*primary_700",
    checkbox_label_background_fill_selected_dark="*primary_700",
    checkbox_label_text_color_selected="white",
    checkbox_label_text_color_selected_dark="white",
    checkbox_border_color_selected="white",  # the ticked box stands out on its teal label
    checkbox_border_color_selected_dark="white",
    checkbox_border_color_hover="*neutral_600",
    checkbox_border_color_hover_dark="*neutral_200",
    # white on teal-500 was 2.5:1 under the pointer in dark mode; slate-500 is 4.8:1 and does
    # not look ticked
    button_secondary_background_fill_hover_dark="*neutral_500",
    # text boxes and menus show their edges: slate-500 on white 4.8:1
    input_border_width="1px",
    input_border_color="*neutral_500",
    input_border_color_dark="*neutral_400",
    input_border_color_hover="*neutral_600",
    input_border_color_focus="*primary_700",
    input_border_color_focus_dark="*primary_300",
)

# Gradio's own breakpoint for small screens; the CSS and the page script both use it.
PHONE = "(max-width: 639.98px)"

CSS = (
    """
.gradio-container { max-width: 1280px !important; margin: 0 auto !important; }
#pg-header { padding: 6px 4px 0 4px; }
#pg-header h1 { margin: 0 0 2px 0; font-size: 1.7rem; color: var(--primary-700); }
/* teal-700 headings: 5.2:1 on slate-50; in dark mode teal-300, 12:1 on slate-900. (Gradio
   scopes these rules to the app: a ".dark" rule must have a single selector.) */
.dark #pg-header h1 { color: var(--primary-300); }
#pg-header p { margin: 0; color: var(--body-text-color-subdued); }
div.block.pg-panel { border: 1px solid var(--border-color-primary); border-radius: 10px;
            padding: 12px 16px !important; background: var(--background-fill-secondary); }
/* never taller than the screen (less a margin), so a passage brought into view is all seen */
div.block#pg-passage { max-height: 640px; max-height: min(640px, calc(100vh - 16px));
                       max-height: min(640px, calc(100svh - 16px)); overflow-y: auto; }
#pg-passage h3 { margin-top: 0; font-size: 1.05rem; color: var(--primary-700); }
.dark #pg-passage h3 { color: var(--primary-300); }
.pg-profile-line { font-size: .88rem; color: var(--body-text-color-subdued); }
div.block#pg-profile-line { overflow: visible !important; }  /* one sentence: never a scroller */
/* the tier menus' edge: Gradio draws it in the faint block border, 1.2:1 */
[id^="pg-override-"] .wrap:has(input) { border-color: var(--input-border-color) !important; }
div.block.pg-notice { border-left: 4px solid #d97706; background: #fffbeb; border-radius: 6px;
             padding: 10px 14px !important; color: #78350f; }
.pg-suggestion, .pg-ask { white-space: normal !important; text-align: left !important;
                          justify-content: flex-start !important; font-weight: 500 !important; }
#pg-suggestions { gap: 8px; }
/* Gradio fades chat text to 80 %, which takes links below 4.5:1 */
#pg-chat .message-wrap .prose.chatbot.md { opacity: 1; }
#pg-chat a[href^="#cite-"] { font-weight: 600; text-decoration: none;
                             color: var(--link-text-color); cursor: pointer; }
#pg-chat a[href^="#cite-"]:hover { text-decoration: underline; }
#pg-chat a.pg-active { background: var(--primary-100); color: var(--primary-800);
                       border-radius: 4px; }
.dark #pg-chat a.pg-active { background: var(--primary-800); color: white; }
#pg-grid { gap: 6px; }
.pg-grid-row { align-items: stretch; gap: 6px !important; }
.pg-grid-label { display: flex; align-items: center; min-width: 180px !important; }
.pg-grid-head .pg-grid-label { color: var(--primary-700); }
.dark .pg-grid-head .pg-grid-label { color: var(--primary-300); }
.pg-cell { min-height: 52px; font-weight: 500 !important; }
div.block.pg-cell-tier { display: none; }  /* the column heads name the tiers; phones: below */
.pg-cell.pg-selected { outline: 2px solid var(--primary-500); }
#pg-cell-detail, #pg-tour { margin-top: 10px; }
.pg-tour-position { text-align: center; align-self: center; }
.pg-profile-element .label-wrap span { font-weight: 600; }
#pg-profile-side { position: sticky; top: 8px; align-self: flex-start; }
#pg-profile-summary table { font-size: .9rem; }
div.block#pg-plan-preview { max-height: 720px; overflow-y: auto; }
div.block#pg-passage:focus-visible, div.block#pg-plan-preview:focus-visible
  { outline: 2px solid var(--primary-700); outline-offset: 2px; }
/* headings for screen readers (each tab starts with one), kept out of sight */
.pg-sr-only { position: absolute !important; width: 1px !important; height: 1px !important;
              padding: 0 !important; margin: -1px !important; overflow: hidden !important;
              clip: rect(0 0 0 0) !important; white-space: nowrap !important;
              border: 0 !important; }
#pg-plan-preview table td:nth-last-child(-n+3), #pg-plan-preview table th:nth-last-child(-n+3)
  { min-width: 7.5rem; }
/* the open tab: Gradio draws it in teal-500, 2.5:1 on white; teal-700 is 5.5:1 (dark: 9:1) */
.tab-container > button.selected { color: var(--primary-700); }
.tab-container > button.selected::after { background-color: var(--primary-700); }
.dark .tab-container > button.selected { color: var(--primary-300); }
@media """
    + PHONE
    + """ {
  #pg-header h1 { font-size: 1.4rem; }
  #pg-header p { font-size: .9rem; line-height: 1.4; }
  /* Gradio puts the tabs that do not fit in a "More tabs" menu; narrower tabs all fit (it
     measures these buttons), and are tall enough for a finger */
  .tab-wrapper { height: auto; }
  .tab-container:not(.visually-hidden) { height: 44px; }
  .tab-container > button { padding: 0 10px; }
  /* the empty chat is its welcome only: the question box and suggestions stay on screen */
  #pg-chat:has(.placeholder-content) { height: auto !important; }
  .pg-suggestion { min-height: 40px; }
  /* the grid: one card per element, each cell with its tier's name beside it */
  #pg-grid .pg-grid-row { display: grid !important; gap: 8px 10px !important;
                          grid-template-columns: minmax(0, 1fr) minmax(0, 1fr);
                          align-items: center; padding: 10px 12px;
                          border: 1px solid var(--border-color-primary); border-radius: 10px;
                          background: var(--background-fill-secondary); }
  #pg-grid .pg-grid-row > * { min-width: 0 !important; }
  #pg-grid div.block.pg-grid-label { grid-column: 1 / -1; }
  #pg-grid div.block.pg-cell-tier { display: block; }
  #pg-grid .pg-grid-row.pg-grid-head { display: none !important; }
  #pg-grid .pg-cell { min-height: 44px; }
  /* "← Previous", "Step 1 of 7", "Next →" on one line */
  #pg-tour-nav { flex-wrap: nowrap; gap: 8px; }
  #pg-tour-nav > button { flex: 1 1 auto; min-width: 0 !important; white-space: nowrap;
                          padding-left: 10px; padding-right: 10px; }
  #pg-tour-nav > .pg-tour-position { flex: 0 0 auto; width: max-content !important; }
  /* Gradio lets table cells break words anywhere ("Complet|ed"): only between words here */
  #pg-profile-summary table { font-size: .8rem; }
  #pg-profile-summary th, #pg-profile-summary td { padding: 6px 8px;
                                                   word-break: normal; overflow-wrap: break-word; }
}
"""
)

# ARIA that Gradio's components take no parameter for, by element id. The citation panel and
# the grid's detail and the tour change on a click: screen readers announce them. Panels that
# scroll can be reached with the keyboard.
ARIA: dict[str, dict[str, str]] = {
    "pg-passage": {
        "role": "region",
        "aria-label": "Cited passage",
        "aria-live": "polite",
        "tabindex": "0",
    },
    "pg-plan-preview": {"role": "region", "aria-label": "Plan preview", "tabindex": "0"},
    "pg-cell-detail": {"role": "region", "aria-label": "Selected cell", "aria-live": "polite"},
    "pg-tour": {"role": "region", "aria-label": "Tour step", "aria-live": "polite"},
}

# The page's side margins on a phone. Gradio nests every rule of ``css`` that sits inside
# ``@media`` under ".contain", and the margins belong to an element outside it.
PAGE_STYLE = (
    "<style>@media "
    + PHONE
    + " { .gradio-container .main.fillable.app { padding-left: 12px; padding-right: 12px; } }"
    + "</style>"
)

# Three behaviours of the page:
# - ARIA: the attributes above, set whenever Gradio (re)mounts those components; and each grid
#   cell's accessible name says its element and tier, read from its row and column heads, as
#   "Payment, The Essentials: 2 action items" (the button shows "2 action items"). The tier
#   names a phone shows beside the cells say it again: screen readers skip them.
# - Clicking "[2]" (a link to "#cite-<turn>-<marker>") shows that passage beside the answer.
# - On a phone, what a tap opens below the fold (a passage, a grid cell) is scrolled into view,
#   once it shows the new text.
HEAD = (
    PAGE_STYLE
    + """
<script>
(() => {
  const aria = """
    + json.dumps(ARIA)
    + """;
  const phone = window.matchMedia("""
    + json.dumps(PHONE)
    + """);
  const text = (block) =>
    (block.querySelector('[data-testid="markdown"]') || block).textContent.trim();
  // Gradio puts a component's classes on its block and on the block's content: take the block
  const labels = (scope) =>
    [...scope.querySelectorAll(".pg-grid-label")].filter(
      (label) => !label.parentElement.closest(".pg-grid-label"),
    );
  const nameGridCells = () => {
    // a cell's count never changes, so only cells (re)mounted since the last pass need a name
    if (!document.querySelector("#pg-grid button.pg-cell:not([aria-label])")) return;
    const head = document.querySelector("#pg-grid .pg-grid-head");
    if (!head) return;
    const tiers = labels(head).slice(1).map(text);
    for (const row of document.querySelectorAll("#pg-grid .pg-grid-row:not(.pg-grid-head)")) {
      const [label] = labels(row);
      if (!label) continue;
      const element = text(label).replace(/^\\d+\\.\\s*/, "");
      row.querySelectorAll("button.pg-cell").forEach((button, n) => {
        if (tiers[n]) {
          button.setAttribute("aria-label", `${element}, ${tiers[n]}: ${button.textContent.trim()}`);
        }
      });
    }
  };
  const applyAria = () => {
    for (const [id, attributes] of Object.entries(aria)) {
      const element = document.getElementById(id);
      if (!element) continue;
      for (const [name, value] of Object.entries(attributes)) {
        if (element.getAttribute(name) !== value) element.setAttribute(name, value);
      }
    }
    nameGridCells();
    for (const tier of document.querySelectorAll("#pg-grid .pg-cell-tier:not([aria-hidden])")) {
      tier.setAttribute("aria-hidden", "true");
    }
  };
  const motion = () =>
    window.matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth";
  // Scroll the panel ``id`` to the top of the screen if ``hidden(box)`` says it is out of
  // view: now, and again once it shows new text (the server's answer to the tap).
  const reveal = (id, hidden, onNewText = () => {}) => {
    const panel = document.getElementById(id);
    if (!panel) return;
    const scroll = () => {
      if (hidden(panel.getBoundingClientRect())) {
        panel.scrollIntoView({ behavior: motion(), block: "start" });
      }
    };
    const before = text(panel);
    const observer = new MutationObserver(() => {
      if (text(panel) === before) return;
      observer.disconnect();
      onNewText(panel);
      requestAnimationFrame(scroll);
    });
    observer.observe(panel, { childList: true, subtree: true, characterData: true });
    setTimeout(() => observer.disconnect(), 10000);
    scroll();
  };
  const offScreen = (box) => box.top > window.innerHeight || box.bottom < 0;
  const notAllShown = (box) => box.top < 0 || box.bottom > window.innerHeight;
  // A new answer opens at its start, not at its end: once the last reply is complete (it no
  // longer ends with the typing mark), the chat scrolls so that reply's top is in view.
  let answered = 0;
  const showAnswerStart = () => {
    const chat = document.getElementById("pg-chat");
    if (!chat) return;
    const replies = chat.querySelectorAll('[data-testid="bot"]');
    const last = replies[replies.length - 1];
    if (!last || replies.length === answered || last.textContent.trim().endsWith("▍")) {
      if (!replies.length) answered = 0;  // a new conversation
      return;
    }
    answered = replies.length;
    const scroll = () => {
      const replies = chat.querySelectorAll('[data-testid="bot"]');
      const last = replies[replies.length - 1];
      let box = last ? last.parentElement : null;
      while (box && box !== chat.parentElement && box.scrollHeight <= box.clientHeight + 2) {
        box = box.parentElement;
      }
      if (!box || box === chat.parentElement) return;
      box.scrollTop += last.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
    };
    // again once the reply's layout has settled (its sources and buttons render after it)
    for (const wait of [0, 120, 400]) setTimeout(scroll, wait);
  };
  new MutationObserver(() => {
    applyAria();
    showAnswerStart();
  }).observe(document.documentElement, {
    childList: true,
    subtree: true,
    characterData: true,
  });
  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (target && phone.matches && target.closest("#pg-grid button.pg-cell")) {
      reveal("pg-cell-detail", notAllShown);
    }
    const link = target ? target.closest('a[href^="#cite-"]') : null;
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    window.planGuideCite = link.getAttribute("href").slice("#cite-".length);
    for (const old of document.querySelectorAll("a.pg-active")) old.classList.remove("pg-active");
    link.classList.add("pg-active");
    // on a phone the passage sits below the chat: it is brought into full view (it is never
    // taller than the screen); a new passage is read from its start
    reveal("pg-passage", phone.matches ? notAllShown : offScreen, (panel) => {
      panel.scrollTop = 0;
    });
    const button = document.getElementById("pg-cite-open");
    if (button) button.click();
  }, true);
})();
</script>
"""
)
