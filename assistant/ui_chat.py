"""The chat tab: cited answers (the question at once, then the whole reply), clickable
citations, follow-ups, feedback, export.

The assistant is opened once per process (``AssistantHolder``); each browser session keeps its
turns in server memory (``gr.State``), never in the browser or on disk unless exported.

    chat = build_chat_panel(settings, holder, toolkit, toolkit_error=None)
    wire_chat(chat, settings, holder, FeedbackStore(path), toolkit, profile_state)
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gradio as gr
from pydantic import BaseModel, Field

from assistant.config import Settings
from assistant.downloads import NO_BROWSER, Downloads, downloads_for
from assistant.errors import AssistantError, public_message
from assistant.feedback import MAX_COMMENT_CHARS, FeedbackStore
from assistant.plan import ProfileState
from assistant.schema import Reply
from assistant.toolkit import TIER_NAMES, Toolkit
from assistant.ui_render import (
    PASSAGE_HINT,
    Turn,
    conversation_markdown,
    find_citation,
    passage_markdown,
    plain_text_markdown,
    reply_markdown,
    streaming_markdown,
)

if TYPE_CHECKING:
    from assistant.chat import Assistant

log = logging.getLogger(__name__)

STARTER_QUESTIONS: tuple[str, ...] = (
    "What are the seven elements of the toolkit?",
    "We're new to this. What are The Essentials for family caregiver support?",
    "We've got the basics covered on equity. What should we do next?",
)
# Opening fails fast (before the model loads) while there is no index, so retrying is cheap.
_RETRY_SECONDS = 2.0
_UNEXPECTED = (
    "Sorry, something went wrong on our side while answering. Please try again; if it keeps "
    "happening, tell the team that runs Plan Guide."
)


class AssistantHolder:
    """The one assistant of this process; after an error, reopened at most every 2 s.

    A watcher thread looks at the store every ``reindex_check_seconds``: when ``ingest.py`` has
    switched it to a rebuilt or updated index, a new assistant is opened beside the serving one
    and takes over between requests. No request waits for it, and none fails: the replaced
    collection stays readable for ``index_grace_seconds``.

    holder = AssistantHolder(settings, IndexMissing("..."))
    holder.get()  # raises that error until the index has been built, then returns the bot
    """

    def __init__(self, settings: Settings, bot_or_error: Assistant | AssistantError) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._bot: Assistant | None = None
        self._error: AssistantError | None = None
        self._failed_at = time.monotonic()
        if isinstance(bot_or_error, AssistantError):
            self._error = bot_or_error
        else:
            self._bot = bot_or_error
        threading.Thread(target=self._watch, name="index-watcher", daemon=True).start()

    @property
    def error(self) -> AssistantError | None:
        return self._error

    def get(self) -> Assistant:
        """The assistant; ``AssistantError`` with a how-to message while it cannot open."""
        if self._bot is not None:
            return self._bot
        with self._lock:
            if self._bot is None and time.monotonic() - self._failed_at >= _RETRY_SECONDS:
                from assistant.chat import Assistant

                try:
                    self._bot, self._error = Assistant.from_settings(self.settings), None
                except AssistantError as exc:
                    self._error, self._failed_at = exc, time.monotonic()
            if self._bot is not None:
                return self._bot
            assert self._error is not None
            raise self._error

    def _watch(self) -> None:
        while True:
            time.sleep(self.settings.reindex_check_seconds)
            bot = self._bot
            if bot is None:
                continue
            try:
                if bot.index_version() == bot.opened:
                    continue
                from assistant.chat import Assistant

                fresh = Assistant.from_settings(self.settings)
            except AssistantError as exc:  # a build under way or a store down: try again later
                log.warning("Could not open the rebuilt index yet: %s", exc)
                continue
            self._bot, self._error = fresh, None
            log.info("Now answering from the rebuilt index (collection %s).", fresh.opened[0])


class Conversation(BaseModel):
    """One browser session's turns, kept in server memory only (``gr.State``)."""

    session: str = ""
    turns: list[Turn] = Field(default_factory=list)
    rated_turn: int | None = None
    # The chat as shown. Kept here, so a request carries the new question, not the whole chat.
    messages: list[dict[str, Any]] = Field(default_factory=list)
    exports: list[str] = Field(default_factory=list, description="this session's export folders")

    def forget_exports(self) -> None:
        """Delete this session's exported files (the session has ended)."""
        Downloads.remove(self.exports)
        self.exports.clear()

    def ensure_session(self) -> str:
        if not self.session:
            self.session = uuid.uuid4().hex
        return self.session


def answer_concurrency(settings: Settings) -> int:
    """How many answers run at once: ``ASSISTANT_CONCURRENCY`` if set, else sized to the CPUs.

    An answer is short CPU work (one query embedding, a lexical search, composing), so one per
    core, at least 2 and at most 8.
    """
    if "concurrency" in settings.model_fields_set:
        return settings.concurrency
    return max(2, min(8, os.cpu_count() or 2))


def question_problem(question: str, settings: Settings) -> str | None:
    """Why a question cannot be taken (too long), checked on the server; None when fine."""
    limit = settings.max_question_chars
    if len(question) > limit:
        return (
            f"Your question is {len(question):,} characters long; the limit is {limit:,}. "
            "Please shorten it and ask again. (Please also leave out any member's personal or "
            "health details.)"
        )
    return None


def profile_line(toolkit: Toolkit | None, stored: Any) -> str:
    """One line under the chat saying which profile the answers use, item by item."""
    if toolkit is None:
        return ""
    state = ProfileState.from_stored(stored)
    profile, progress = state.profile(toolkit), state.progress(toolkit)
    done = []
    for element in toolkit.elements:
        level, step = profile[element.key], progress[element.key]
        if level == "none" and not step.done:
            continue
        if step.tier is None:
            done.append(f"{element.name}: all three tiers done")
        elif level == "none":
            done.append(f"{element.name}: {step.text}")
        else:
            done.append(f"{element.name}: {TIER_NAMES[level]} completed, {step.text}")
    if not done:
        return (
            "Answers assume your plan is starting out on every element. Tick what you have done "
            "under **My plan**, or mark items done in an answer, to get the next steps that fit."
        )
    return "Answers use your plan profile: " + "; ".join(done) + "."


def done_choices(reply: Reply) -> list[tuple[str, str]]:
    """The action items an answer cites, as (label, id) choices for "mark done"."""
    out = []
    for citation in reply.citations:
        if citation.kind == "action_item" and citation.tier:
            lead = citation.text.split("\n", 1)[0]
            lead = lead if len(lead) <= 110 else lead[:110].rsplit(" ", 1)[0] + " …"
            out.append((f"{lead} ({TIER_NAMES.get(citation.tier, citation.tier)})", citation.id))
    return out


@dataclass
class ChatPanel:
    """The chat tab's components, for wiring; ``respond_event`` is filled by ``_wire_chat``."""

    chatbot: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    convo: gr.State
    passage: gr.Markdown
    profile_line: gr.Markdown
    suggestion_label: gr.Markdown
    suggestions: list[gr.Button]
    feedback_box: gr.Group
    feedback_note: gr.Markdown
    comment: gr.Textbox
    save_comment: gr.Button
    export: gr.Button
    export_file: gr.HTML
    mark_done: gr.CheckboxGroup
    new_chat: gr.Button
    cite_key: gr.Textbox
    cite_open: gr.Button
    notice: gr.Markdown
    respond_event: dict[str, Any] = field(default_factory=dict)


def build_chat_panel(
    settings: Settings,
    holder: AssistantHolder,
    toolkit: Toolkit | None,
    toolkit_error: AssistantError | None,
) -> ChatPanel:
    """The chat tab's layout; a notice on top says how to fix a missing index or corpus."""
    problem = toolkit_error or holder.error
    notice = gr.Markdown(
        f"**The assistant is not ready yet.** {public_message(problem) if problem else ''}\n\n"
        "Once that is done, ask your question "
        "again: no restart is needed.",
        visible=problem is not None,
        elem_id="pg-not-ready",
        elem_classes="pg-notice",
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=420):
            chatbot = gr.Chatbot(
                label="Plan Guide",
                show_label=False,
                elem_id="pg-chat",
                height=520,
                layout="panel",
                autoscroll=False,  # the page script shows each new answer from its start
                sanitize_html=True,
                render_markdown=True,
                allow_tags=False,
                buttons=["copy"],
                feedback_options=("Like", "Dislike"),
                latex_delimiters=[],
                placeholder=(
                    "### Ask about your palliative care strategy\n"
                    "Answers quote the toolkit and cite it: click a number like **[1]** to read "
                    "the passage. Try one of the questions below."
                ),
            )
            with gr.Row(equal_height=True):
                question = gr.Textbox(
                    placeholder="Ask about an element, a tier, next steps or resources…",
                    show_label=False,
                    lines=1,
                    max_lines=6,
                    max_length=settings.max_question_chars,
                    scale=6,
                    elem_id="pg-question",
                    autofocus=True,
                )
                send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="pg-send")
            suggestion_label = gr.Markdown("**Try asking**", elem_id="pg-suggest-label")
            with gr.Row(elem_id="pg-suggestions"):
                suggestions = [
                    gr.Button(q, size="sm", elem_classes="pg-suggestion", elem_id=f"pg-suggest-{n}")
                    for n, q in enumerate(STARTER_QUESTIONS)
                ]
            mark_done = gr.CheckboxGroup(
                label="Already done? Tick the items of this answer your plan does: My plan updates",
                choices=[],
                visible=False,
                elem_id="pg-mark-done",
            )
            with gr.Group(visible=False, elem_id="pg-feedback") as feedback_box:
                feedback_note = gr.Markdown(elem_id="pg-feedback-note")
                with gr.Row(equal_height=True):
                    comment = gr.Textbox(
                        placeholder="What was good, wrong or missing? (optional)",
                        show_label=False,
                        max_length=MAX_COMMENT_CHARS,
                        scale=5,
                        elem_id="pg-feedback-comment",
                    )
                    save_comment = gr.Button("Send comment", scale=1, elem_id="pg-feedback-save")
            with gr.Row():
                export = gr.Button("Export conversation", size="sm", elem_id="pg-export")
                new_chat = gr.Button("New conversation", size="sm", elem_id="pg-new-chat")
            export_file = gr.HTML(visible=False, elem_id="pg-export-file")
        with gr.Column(scale=2, min_width=300):
            passage = gr.Markdown(PASSAGE_HINT, elem_id="pg-passage", elem_classes="pg-panel")
            profile_md = gr.Markdown(
                profile_line(toolkit, None),
                elem_id="pg-profile-line",
                elem_classes="pg-profile-line",
            )
    # The page script puts the clicked marker's key here and presses the hidden button.
    cite_key = gr.Textbox(visible="hidden", elem_id="pg-cite-key")
    cite_open = gr.Button("open", visible="hidden", elem_id="pg-cite-open")
    return ChatPanel(
        notice=notice,
        chatbot=chatbot,
        question=question,
        send=send,
        # When the browser session ends, Gradio drops its state: its exports go with it.
        convo=gr.State(Conversation(), delete_callback=Conversation.forget_exports),
        passage=passage,
        profile_line=profile_md,
        suggestion_label=suggestion_label,
        suggestions=suggestions,
        feedback_box=feedback_box,
        feedback_note=feedback_note,
        comment=comment,
        save_comment=save_comment,
        export=export,
        export_file=export_file,
        mark_done=mark_done,
        new_chat=new_chat,
        cite_key=cite_key,
        cite_open=cite_open,
    )


def wire_chat(
    chat: ChatPanel,
    settings: Settings,
    holder: AssistantHolder,
    feedback: FeedbackStore,
    toolkit: Toolkit | None,
    profile_state: Any,
) -> None:
    suggestion_outputs = [chat.suggestion_label, *chat.suggestions]

    def suggestion_updates(label: str, questions: list[str]) -> list[Any]:
        shown = questions[: len(chat.suggestions)]
        updates: list[Any] = [gr.update(value=f"**{label}**", visible=bool(shown))]
        for n in range(len(chat.suggestions)):
            if n < len(shown):
                updates.append(gr.update(value=shown[n], visible=True))
            else:
                updates.append(gr.update(visible=False))
        return updates

    def respond(question: str, convo: Conversation, stored: Any) -> Any:
        question = (question or "").strip()
        history = convo.messages  # the chat as shown: this session's, from server memory
        keep = gr.update()

        def shown(
            box: Any, suggestions: list[Any], notice: Any = keep, done: Any = keep
        ) -> tuple[Any, ...]:
            # chatbot, question box, turns, suggestions, feedback box (hidden), notice, done box
            return (history, box, convo, *suggestions, gr.update(visible=False), notice, done)

        busy = [gr.update(visible=False) for _ in suggestion_outputs]
        starters = suggestion_updates("Try asking", list(STARTER_QUESTIONS))
        if not question:
            yield shown(keep, [keep for _ in suggestion_outputs])
            return
        # The session id exists before any answer can be rated, so concurrent thumbs on one
        # conversation never make ids of their own.
        convo.ensure_session()
        state = ProfileState.from_stored(stored)
        profile = state.profile(toolkit) if toolkit else {}
        checked = sorted(state.checked_in(toolkit)) if toolkit else []
        problem = question_problem(question, settings)
        if problem:
            cut = question[:200] + "…"
            history += [
                {"role": "user", "content": plain_text_markdown(cut)},
                {"role": "assistant", "content": problem},
            ]
            convo.turns.append(Turn(question=cut, message=problem, profile=profile))
            yield shown(question, starters)  # left in the box, to be shortened
            return
        history += [
            {"role": "user", "content": plain_text_markdown(question)},
            {"role": "assistant", "content": streaming_markdown("")},
        ]
        yield shown("", busy)
        turn = len(convo.turns)
        try:
            bot = holder.get()
            # The plan the last answer was built on, when there is one: a follow-up ("we've
            # done those") moves from the tier shown, not from a replay of the words.
            last = convo.turns[-1].reply if convo.turns else None
            shown_plan = last.plan if last is not None else None
            reply = bot.ask(
                question,
                history=[t.question for t in convo.turns],
                previous=shown_plan,
                profile=profile,
                done_items=checked,
            )
        except AssistantError as exc:
            message = public_message(exc)
            history[-1] = {
                "role": "assistant",
                "content": f"**Sorry, I can't answer yet.** {message}",
            }
            convo.turns.append(Turn(question=question, message=message, profile=profile))
            yield shown("", starters)
            return
        except Exception:  # a bug: logged with its traceback, the user gets a plain message
            log.exception("Unexpected error answering a question")
            history[-1] = {"role": "assistant", "content": _UNEXPECTED}
            convo.turns.append(Turn(question=question, message=_UNEXPECTED, profile=profile))
            yield shown("", starters)
            return
        history[-1] = {"role": "assistant", "content": reply_markdown(reply, turn, toolkit)}
        convo.turns.append(Turn(question=question, reply=reply, profile=profile))
        # When the best two readings were close, offer the others as one-click questions.
        follow_ups = (
            suggestion_updates("Did you mean", [a.question for a in reply.alternatives])
            if reply.alternatives
            else suggestion_updates("Follow up", reply.suggestions)
        )
        choices = done_choices(reply) if toolkit else []
        done_box = gr.update(
            choices=choices,
            value=[item_id for _, item_id in choices if item_id in checked],
            visible=bool(choices),
        )
        yield shown("", follow_ups, notice=gr.update(visible=False), done=done_box)

    respond_inputs = [chat.question, chat.convo, profile_state]
    respond_outputs = [
        chat.chatbot,
        chat.question,
        chat.convo,
        *suggestion_outputs,
        chat.feedback_box,
        chat.notice,
        chat.mark_done,
    ]
    chat.respond_event = {
        "fn": respond,
        "inputs": respond_inputs,
        "outputs": respond_outputs,
        "api_visibility": "private",
        "concurrency_limit": answer_concurrency(settings),
        "concurrency_id": "assistant",
        "show_progress": "minimal",
    }
    gr.on(
        triggers=[chat.question.submit, chat.send.click],
        trigger_mode="once",
        **chat.respond_event,
    )
    for button in chat.suggestions:
        button.click(
            lambda q: q, button, chat.question, api_visibility="private", queue=False
        ).then(**chat.respond_event)

    def mark_done(ticked: Any, convo: Conversation, stored: Any) -> Any:
        # Only the items the last answer offers change: ticks elsewhere in the profile stay.
        last = next((t.reply for t in reversed(convo.turns) if t.reply is not None), None)
        if last is None or toolkit is None:
            return gr.skip()
        offered = {item_id for _, item_id in done_choices(last)}
        chosen = {i for i in (ticked if isinstance(ticked, list) else []) if i in offered}
        state = ProfileState.from_stored(stored)
        checked = sorted((set(state.checked) - offered) | chosen)
        return state.model_copy(update={"checked": checked}).model_dump()

    chat.mark_done.input(
        mark_done,
        [chat.mark_done, chat.convo, profile_state],
        profile_state,
        api_visibility="private",
        queue=False,
    )

    def open_citation(key: str, convo: Conversation) -> str:
        citation = find_citation(convo.turns, key)
        if citation is None:
            return PASSAGE_HINT + "\n\n*That citation is no longer in this conversation.*"
        return passage_markdown(citation, toolkit)

    chat.cite_open.click(
        open_citation,
        [chat.cite_key, chat.convo],
        chat.passage,
        js="(key, convo) => [window.planGuideCite || '', convo]",
        api_visibility="private",
        queue=False,
    )

    def on_like(convo: Conversation, data: gr.LikeData) -> list[Any]:
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        turn = int(index) // 2
        if not 0 <= turn < len(convo.turns):
            return [convo, gr.update(visible=False), gr.update(), gr.update()]
        session = convo.ensure_session()
        record = convo.turns[turn]
        try:
            if data.liked is True or data.liked is False:
                feedback.rate(
                    session=session,
                    turn=turn,
                    liked=bool(data.liked),
                    question=record.question,
                    reply=record.reply,
                    reply_text=record.message,
                    profile=record.profile,
                )
                convo.rated_turn = turn
                thumb = "helpful" if data.liked else "not helpful"
                note = (
                    f"Thanks: answer {turn + 1} marked **{thumb}**. Add a comment if you like; "
                    "it helps us improve the answers. Kept: this question and answer only, with "
                    "names, dates and ID, phone and email details taken out; earlier questions "
                    "are not kept."
                )
                return [convo, gr.update(visible=True), note, ""]
            feedback.withdraw(session=session, turn=turn)
            convo.rated_turn = None
            return [convo, gr.update(visible=False), "", ""]
        except AssistantError as exc:
            return [
                convo,
                gr.update(visible=True),
                f"Your rating was not saved: {public_message(exc)}",
                "",
            ]

    chat.chatbot.like(
        on_like,
        chat.convo,
        [chat.convo, chat.feedback_box, chat.feedback_note, chat.comment],
        api_visibility="private",
        queue=False,
    )

    def on_comment(text: str, convo: Conversation) -> list[Any]:
        text = (text or "").strip()[:MAX_COMMENT_CHARS]
        if convo.rated_turn is None or not text:
            return [gr.update(), gr.update()]
        try:
            saved = feedback.comment(
                session=convo.ensure_session(), turn=convo.rated_turn, text=text
            )
        except AssistantError as exc:
            return [f"Your comment was not saved: {public_message(exc)}", gr.update()]
        if not saved:
            return ["Rate the answer with a thumb first, then add your comment.", gr.update()]
        return [f"Thanks, your comment on answer {convo.rated_turn + 1} is saved.", ""]

    gr.on(
        triggers=[chat.save_comment.click, chat.comment.submit],
        fn=on_comment,
        inputs=[chat.comment, chat.convo],
        outputs=[chat.feedback_note, chat.comment],
        api_visibility="private",
        queue=False,
    )

    downloads = downloads_for(settings)

    def export_conversation(convo: Conversation, request: gr.Request) -> Any:
        if not convo.turns:
            gr.Info("Ask a question first: there is nothing to export yet.")
            return gr.update(visible=False)
        name = f"plan-guide-conversation-{time.strftime('%Y%m%d-%H%M')}.md"
        saved = downloads.save_for(request, {name: conversation_markdown(convo.turns).encode()})
        if saved is None:
            gr.Warning(NO_BROWSER)
            return gr.update(visible=False)
        convo.exports.append(saved.folder)
        return gr.update(
            value=saved.html("Conversation (Markdown), for this browser only:"), visible=True
        )

    chat.export.click(export_conversation, chat.convo, chat.export_file, api_visibility="private")

    def new_conversation() -> list[Any]:
        return [
            [],
            Conversation(),
            PASSAGE_HINT,
            gr.update(visible=False),
            gr.update(value=None, visible=False),
            *suggestion_updates("Try asking", list(STARTER_QUESTIONS)),
            gr.update(choices=[], value=[], visible=False),
        ]

    # The chatbot's own trash button clears the messages; the turns must go with them.
    gr.on(
        triggers=[chat.new_chat.click, chat.chatbot.clear],
        fn=new_conversation,
        inputs=None,
        outputs=[
            chat.chatbot,
            chat.convo,
            chat.passage,
            chat.feedback_box,
            chat.export_file,
            *suggestion_outputs,
            chat.mark_done,
        ],
        api_visibility="private",
        queue=False,
    )
