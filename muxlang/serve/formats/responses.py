"""OpenAI Responses API (``POST /v1/responses``) ⇄ the internal type.

Mapping decisions (also in docs/gateway.md):

- ``input`` is a string (one user message) or a list of items: messages
  (``role`` user/assistant/system/developer, ``content`` a string or
  ``input_text``/``output_text`` parts), ``function_call`` items (the model's
  earlier calls) and ``function_call_output`` items (their results).
  ``instructions`` and leading system/developer messages become the system prompt.
- ``max_output_tokens`` is the internal ``max_tokens``; ``tools`` of type
  ``function`` are tools, other tool types (web search, file search ...) are
  refused; ``tool_choice`` is auto/none/required or ``{"type": "function", "name"}``.
- The answer is a ``response`` object whose ``output`` holds a ``message`` item
  (one ``output_text`` part) and one ``function_call`` item per tool call
  (``call_id``, ``name``, ``arguments``). An answer cut by the token limit is
  ``status: "incomplete"`` with ``incomplete_details.reason = "max_output_tokens"``.
- ``previous_response_id`` (server-side conversation state) is refused: muxlang
  stores no responses; send the whole conversation as ``input``.
- Streams are the documented event sequence: ``response.created``,
  ``response.in_progress``, ``response.output_item.added``,
  ``response.content_part.added``, ``response.output_text.delta`` ...
  ``response.output_text.done``, ``response.content_part.done``,
  ``response.output_item.done``, the ``response.function_call_arguments.*``
  events for calls, then ``response.completed``. An error after the first event
  is an ``error`` event followed by ``response.failed``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from muxlang.llm import (
    ChatRequest,
    ChatResponse,
    Finish,
    Message,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from muxlang.serve.formats import ClientFormat, Untranslatable, WireError, openai
from muxlang.serve.formats.common import (
    chat_request,
    content_text,
    json_arguments,
    need_list,
    need_mapping,
    new_id,
    positive_int,
    sse,
    tool_in,
)

# --------------------------------------------------------------------------- requests


def _items(value: Any, system: list[str]) -> list[Message]:
    if isinstance(value, str):
        return [Message("user", value)]
    messages: list[Message] = []
    for i, raw in enumerate(need_list(value, "`input`")):
        where = f"input[{i}]"
        item = need_mapping(raw, where)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            text = content_text(item.get("content"), where)
            if role in ("system", "developer"):
                if messages:
                    messages.append(Message("system", text))
                else:
                    system.append(text)
            elif role in ("user", "assistant"):
                messages.append(Message(role, text))
            else:
                raise WireError(f"{where}: unsupported role {role!r}")
        elif kind == "function_call":
            call = ToolCall(
                id=str(item.get("call_id") or new_id("call_")),
                name=str(item.get("name", "")),
                arguments=json_arguments(item.get("arguments")),
            )
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                merged = Message("assistant", last.content, (*last.tool_calls, call))
                messages[-1] = merged
            else:
                messages.append(Message("assistant", "", (call,)))
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str):
                raise WireError(f"{where}: a function_call_output needs `call_id`")
            output = item.get("output")
            text = output if isinstance(output, str) else content_text(output, where)
            messages.append(Message("tool", text, tool_call_id=call_id))
        elif kind == "reasoning":
            continue
        else:
            raise Untranslatable(f"{where}: input item of type {kind!r} is not supported")
    return messages


def _tool_choice_in(value: Any) -> Any:
    if value is None or value in ("auto", "none", "required"):
        return value
    named = isinstance(value, Mapping) and isinstance(value.get("name"), str)
    if named and value.get("type") == "function":
        return {"name": value["name"]}
    raise WireError('`tool_choice` must be "auto", "none", "required" or a function')


# --------------------------------------------------------------------------- responses


def _usage_out(usage: Usage | None) -> dict[str, Any]:
    u = usage or Usage()
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.input_tokens + u.output_tokens,
    }


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}]
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content if status == "completed" else [],
    }


def _call_item(item_id: str, call: ToolCall, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments if status == "completed" else "",
        "status": status,
    }


def _envelope(
    rid: str, model: str, created: int, status: str, output: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "model": model,
        "output": output,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "parallel_tool_calls": True,
        "temperature": None,
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "usage": None,
    }


def _finished(envelope: dict[str, Any], reason: str | None, usage: Usage | None) -> dict[str, Any]:
    if reason == "length":
        envelope["status"] = "incomplete"
        envelope["incomplete_details"] = {"reason": "max_output_tokens"}
    else:
        envelope["status"] = "completed"
    envelope["usage"] = _usage_out(usage)
    return envelope


# --------------------------------------------------------------------------- streams


class StreamEncoder:
    """Internal stream events → the Responses API's event sequence."""

    def __init__(self, model: str) -> None:
        self.envelope = _envelope(new_id("resp_"), model, int(time.time()), "in_progress", [])
        self.seq = 0
        self.text_item: dict[str, Any] | None = None
        self.text: list[str] = []
        #: the internal tool-call index -> (output index, item, argument pieces)
        self.calls: dict[int, tuple[int, dict[str, Any], list[str]]] = {}
        self.output: list[dict[str, Any]] = []

    def _ev(self, kind: str, **data: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.seq, **data}
        self.seq += 1
        return sse(payload, kind)

    def start(self) -> bytes:
        return self._ev("response.created", response=self.envelope) + self._ev(
            "response.in_progress", response=self.envelope
        )

    def _close_text(self) -> bytes:
        item = self.text_item
        if item is None:
            return b""
        self.text_item = None
        text = "".join(self.text)
        done = _message_item(item["id"], text)
        index = self.output.index(item)
        self.output[index] = done
        part = done["content"][0]
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        return (
            self._ev("response.output_text.done", **where, text=text)
            + self._ev("response.content_part.done", **where, part=part)
            + self._ev("response.output_item.done", output_index=index, item=done)
        )

    def _close_calls(self) -> bytes:
        out = b""
        for index, item, pieces in self.calls.values():
            arguments = "".join(pieces)
            done = {**item, "arguments": arguments, "status": "completed"}
            self.output[index] = done
            out += self._ev(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                arguments=arguments,
            )
            out += self._ev("response.output_item.done", output_index=index, item=done)
        self.calls = {}
        return out

    def event(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            if not event.text:
                return b""
            out = b""
            if self.text_item is None:
                self.text_item = _message_item(new_id("msg_"), "", "in_progress")
                self.output.append(self.text_item)
                index = len(self.output) - 1
                out += self._ev(
                    "response.output_item.added", output_index=index, item=self.text_item
                )
                out += self._ev(
                    "response.content_part.added",
                    item_id=self.text_item["id"],
                    output_index=index,
                    content_index=0,
                    part={"type": "output_text", "text": "", "annotations": []},
                )
            self.text.append(event.text)
            return out + self._ev(
                "response.output_text.delta",
                item_id=self.text_item["id"],
                output_index=self.output.index(self.text_item),
                content_index=0,
                delta=event.text,
            )
        if isinstance(event, ToolCallDelta):
            out = self._close_text()
            if event.index not in self.calls:
                call = ToolCall(event.id or new_id("call_"), event.name or "", "")
                item = _call_item(new_id("fc_"), call, "in_progress")
                self.output.append(item)
                self.calls[event.index] = (len(self.output) - 1, item, [])
                out += self._ev(
                    "response.output_item.added", output_index=len(self.output) - 1, item=item
                )
            index, item, pieces = self.calls[event.index]
            if event.arguments:
                pieces.append(event.arguments)
                out += self._ev(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=index,
                    delta=event.arguments,
                )
            return out
        assert isinstance(event, Finish)
        if event.reason == "error":
            return self.error("the backend reported an error")
        out = self._close_text() + self._close_calls()
        self.envelope["output"] = self.output
        done = _finished(self.envelope, event.reason, event.usage)
        kind = "response.incomplete" if done["status"] == "incomplete" else "response.completed"
        return out + self._ev(kind, response=done)

    def error(self, message: str, status: int = 502) -> bytes:
        code = openai.FORMAT.error_body(status, message)["error"]["type"]
        self.envelope["status"] = "failed"
        self.envelope["output"] = self.output
        self.envelope["error"] = {"code": code, "message": message}
        return self._ev("error", code=code, message=message, param=None) + self._ev(
            "response.failed", response=self.envelope
        )

    def end(self) -> bytes:
        return b""


# --------------------------------------------------------------------------- the format


class ResponsesFormat(ClientFormat):
    name = "responses"

    def request_from_wire(self, body: Mapping[str, Any]) -> ChatRequest:
        """A Responses request body as the internal request (``model`` kept as is)."""
        max_tokens = positive_int(body, "max_output_tokens")
        if body.get("previous_response_id") is not None:
            raise WireError(
                "`previous_response_id` is not supported: muxlang stores no responses; "
                "send the whole conversation as `input`"
            )
        if body.get("input") is None:
            raise WireError("`input` is required")
        system: list[str] = []
        if isinstance(body.get("instructions"), str):
            system.append(body["instructions"])
        messages = _items(body.get("input"), system)
        if not messages:
            raise WireError("`input` must not be empty")
        tools: list[Tool] = []
        for i, raw in enumerate(need_list(body.get("tools") or [], "`tools`")):
            tool = need_mapping(raw, f"tools[{i}]")
            if tool.get("type") != "function":
                raise Untranslatable(
                    f"tools[{i}]: tools of type {tool.get('type')!r} are not supported"
                )
            tools.append(tool_in(tool, f"tools[{i}]", "parameters"))
        joined = "\n\n".join(system) if system else None
        return chat_request(body, messages, joined, max_tokens, tools, _tool_choice_in)

    def response_to_wire(self, response: ChatResponse, model: str) -> dict[str, Any]:
        """The internal response as a ``response`` object."""
        output: list[dict[str, Any]] = []
        if response.text or not response.tool_calls:
            output.append(_message_item(new_id("msg_"), response.text))
        output += [_call_item(new_id("fc_"), call) for call in response.tool_calls]
        envelope = _envelope(new_id("resp_"), model, int(time.time()), "completed", output)
        return _finished(envelope, response.finish_reason, response.usage)

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        """The OpenAI error shape (the Responses API uses it too)."""
        return openai.FORMAT.error_body(status, message)

    def encoder(self, model: str, include_usage: bool) -> StreamEncoder:
        return StreamEncoder(model)


FORMAT = ResponsesFormat()
