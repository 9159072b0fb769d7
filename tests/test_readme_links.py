"""`tests/check_links.py` (`make check` runs it): README's `#anchor` links lead to headings; a broken one is caught."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT

CHECKER = ROOT / "tests" / "check_links.py"


def check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHECKER), str(folder)], capture_output=True, text=True, timeout=30)


def test_every_anchor_link_of_the_checkouts_markdown_leads_to_a_heading() -> None:
    """README's links to its own sections (and any other top-level Markdown file's into it) all resolve."""
    done = check(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "anchor links" in done.stdout and "all lead to a heading" in done.stdout


SAMPLE = """\
# Shop

## Notifications: webhooks, email and SMS out
## `make run` (the demo)
## FAQ
## FAQ
### Café & _más_ <span>tags</span>

```sh
# a shell comment, not a heading
see [the code](#a-shell-comment-not-a-heading)
```

Links: [ok](#notifications-webhooks-email-and-sms-out), [ok](#make-run-the-demo), [ok](#faq-1),
[ok](#caf%C3%A9--más-tags), [gone](#tracker-apps), [second FAQ repeat](#faq-2), `[in code](#nowhere)`.
[reference]: #integrations
"""


def test_a_broken_anchor_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    """Links to headings that do not exist fail the check, each named with its file and line; headings with code,
    punctuation, accents and repeats count as GitHub anchors them; code blocks and code spans are not links."""
    (tmp_path / "README.md").write_text(SAMPLE, encoding="utf-8")
    (tmp_path / "CHANGELOG.md").write_text(
        "# Changelog\n\n- see [the demo](README.md#make-run-the-demo)\n- and [setup](./README.md#setup)\n",
        encoding="utf-8",
    )
    done = check(tmp_path)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "CHANGELOG.md:4: #setup: no such heading in README.md",
        "README.md:15: #tracker-apps: no such heading in README.md",
        "README.md:15: #faq-2: no such heading in README.md (did you mean #faq-1?)",
        "README.md:16: #integrations: no such heading in README.md",
    ]
    assert "4 of 9 anchor links broken" in done.stderr
    fixed = SAMPLE.replace("(#tracker-apps)", "(#shop)").replace("#faq-2", "#faq").replace(": #integrations", ": #faq")
    (tmp_path / "README.md").write_text(fixed, encoding="utf-8")
    (tmp_path / "CHANGELOG.md").write_text("# Changelog\n\n- [demo](README.md#make-run-the-demo)\n", encoding="utf-8")
    done = check(tmp_path)
    assert done.returncode == 0, done.stdout
    assert "8 anchor links" in done.stdout
