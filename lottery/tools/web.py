"""``web_search``: Wikipedia through langchain-community, for users with network access.

Off by default (``LOTTERY_WEB_SEARCH=1`` turns it on); when the ``wikipedia``
package or the network is missing it fails with a clear tool error instead of
hanging a run.
"""

from __future__ import annotations

import asyncio

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from lottery.errors import ToolError


class WebArgs(BaseModel):
    """Arguments of ``web_search``."""

    query: str = Field(min_length=1, max_length=300, description="What to look up on Wikipedia.")


def make_web_search(timeout_s: float = 15.0) -> BaseTool:
    """A Wikipedia search tool (``WikipediaQueryRun`` from langchain-community)."""

    async def web_search(query: str) -> str:
        try:
            from langchain_community.tools import WikipediaQueryRun
            from langchain_community.utilities import WikipediaAPIWrapper

            wiki = WikipediaQueryRun(api_wrapper=WikipediaAPIWrapper(
                top_k_results=2, doc_content_chars_max=2000))
        except (ImportError, ValueError) as exc:
            raise ToolError(
                "web search is unavailable: install the 'wikipedia' package "
                f"(pip install wikipedia) and allow network access ({exc})"
            ) from None
        try:
            return await asyncio.wait_for(asyncio.to_thread(wiki.run, query), timeout_s)
        except (TimeoutError, OSError) as exc:
            reason = str(exc) or f"timed out after {timeout_s:g} s"
            raise ToolError(f"web search is unavailable (offline?): {reason}") from None
        except Exception as exc:  # the wikipedia client raises requests' errors when offline
            raise ToolError(f"web search is unavailable (offline?): {type(exc).__name__}") from None

    return StructuredTool.from_function(
        coroutine=web_search, name="web_search", args_schema=WebArgs,
        description="Look a topic up on Wikipedia (needs network access).",
    )
