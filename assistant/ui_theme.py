"""Look and page script of the app: a calm theme with local fonts, and the citation-click bridge.

No web fonts are fetched: the page must work offline and load nothing from third parties.
"""

from __future__ import annotations

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
)

CSS = """
.gradio-container { max-width: 1280px !important; margin: 0 auto !important; }
#pg-header { padding: 6px 4px 0 4px; }
#pg-header h1 { margin: 0 0 2px 0; font-size: 1.7rem; color: var(--primary-700); }
#pg-header p { margin: 0; color: var(--body-text-color-subdued); }
div.block.pg-panel { border: 1px solid var(--border-color-primary); border-radius: 10px;
            padding: 12px 16px !important; background: var(--background-fill-secondary); }
div.block#pg-passage { max-height: 640px; overflow-y: auto; }
#pg-passage h3 { margin-top: 0; font-size: 1.05rem; color: var(--primary-700); }
.pg-profile-line { font-size: .88rem; color: var(--body-text-color-subdued); }
div.block.pg-notice { border-left: 4px solid #d97706; background: #fffbeb; border-radius: 6px;
             padding: 10px 14px !important; color: #78350f; }
.pg-suggestion, .pg-ask { white-space: normal !important; text-align: left !important;
                          justify-content: flex-start !important; font-weight: 500 !important; }
#pg-suggestions { gap: 8px; }
#pg-chat a[href^="#cite-"] { font-weight: 600; text-decoration: none;
                             color: var(--primary-600); cursor: pointer; }
#pg-chat a[href^="#cite-"]:hover { text-decoration: underline; }
#pg-chat a.pg-active { background: var(--primary-100); border-radius: 4px; }
#pg-grid { gap: 6px; }
.pg-grid-row { align-items: stretch; gap: 6px !important; }
.pg-grid-label { display: flex; align-items: center; min-width: 180px !important; }
.pg-grid-head .pg-grid-label { color: var(--primary-700); }
.pg-cell { min-height: 52px; font-weight: 500 !important; }
.pg-cell.pg-selected { outline: 2px solid var(--primary-500); }
#pg-cell-detail, #pg-tour { margin-top: 10px; }
.pg-tour-position { text-align: center; align-self: center; }
.pg-profile-element .label-wrap span { font-weight: 600; }
#pg-profile-side { position: sticky; top: 8px; align-self: flex-start; }
#pg-profile-summary table { font-size: .9rem; }
div.block#pg-plan-preview { max-height: 720px; overflow-y: auto; }
#pg-plan-preview table td:nth-last-child(-n+3), #pg-plan-preview table th:nth-last-child(-n+3)
  { min-width: 7.5rem; }
"""

# Clicking "[2]" (a link to "#cite-<turn>-<marker>") shows that passage beside the answer.
HEAD = """
<script>
(() => {
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest('a[href^="#cite-"]') : null;
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    window.planGuideCite = link.getAttribute("href").slice("#cite-".length);
    for (const old of document.querySelectorAll("a.pg-active")) old.classList.remove("pg-active");
    link.classList.add("pg-active");
    const button = document.getElementById("pg-cite-open");
    if (button) button.click();
    // on a narrow screen the passage sits below the chat: bring it into view
    const panel = document.getElementById("pg-passage");
    if (panel) {
      const box = panel.getBoundingClientRect();
      if (box.top > window.innerHeight || box.bottom < 0) {
        panel.scrollIntoView({ behavior: "smooth", block: "start" });
      }
    }
  }, true);
})();
</script>
"""
