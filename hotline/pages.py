"""Server-rendered HTML shells of the console. Data is fetched by
static/console.js; everything interpolated here is escaped."""
from __future__ import annotations

from html import escape
from typing import Any, Dict, Optional

_LOGIN_STYLE = """
body{font-family:system-ui,"PingFang SC","Noto Sans CJK SC",sans-serif;background:#eef2f5;margin:0}
main{max-width:22rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 2px 8px #0002}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}
button{margin-top:1.2rem;width:100%;padding:.6rem;font-size:1rem;background:#1565c0;color:#fff;border:0;border-radius:4px}
.error{color:#b00020}
"""


def login_page(csrf: str, error: Optional[str] = None, username: str = "") -> str:
    """The sign-in form (no script; the CSRF token is double-submitted)."""
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>热线工作台 · Hotline console · 登录</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_LOGIN_STYLE}</style></head>
<body><main><h1>热线工作台 <small>Hotline console</small></h1>{message}
<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{escape(csrf)}">
<label for="username">用户名 Username</label><input id="username" name="username" autocomplete="username" required value="{escape(username)}">
<label for="password">密码 Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="login">登录 Sign in</button></form></main></body></html>"""


def console_page(page: str, title: str, user: Dict[str, Any], body: str, extra: Optional[Dict[str, str]] = None) -> str:
    """A signed-in page: navigation, CSRF meta tag, data attributes for the script."""
    attributes = " ".join(f'data-{escape(k)}="{escape(v)}"' for k, v in (extra or {}).items())
    supervisor_links = (
        '<a href="/dashboard">看板 Dashboard</a> <a href="/audit">审计 Audit log</a>'
        if user["role"] == "supervisor" else ""
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)} · 热线工作台</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{escape(user['csrf_token'])}">
<link rel="stylesheet" href="/static/console.css"></head>
<body data-page="{escape(page)}" {attributes}>
<header><strong>热线工作台 Hotline console</strong>
<nav><a href="/">队列 Queue</a> {supervisor_links}</nav>
<span class="who">{escape(user['display_name'])} ({escape(user['role'])})</span>
<form method="post" action="/logout" class="inline"><input type="hidden" name="csrf_token" value="{escape(user['csrf_token'])}"><button id="logout">退出 Sign out</button></form>
</header>
<main>{body}</main>
<script src="/static/console.js"></script></body></html>"""


QUEUE_BODY = """
<h1>等待队列 Queue <span id="live" class="live" title="live updates">●</span></h1>
<p class="hint">按紧急程度、再按等待时间排序，自动更新。Ordered by urgency, then waiting time; updates live.</p>
<table id="queue"><thead><tr><th>#</th><th>紧急 Urgency</th><th>原因 Trigger</th><th>渠道 Channel</th>
<th>语言 Lang</th><th>用户 User</th><th>孩子月龄 Child age</th><th>等待 Waiting</th><th>状态 Status</th><th></th></tr></thead>
<tbody></tbody></table>
<p id="empty" class="hint">队列为空 The queue is empty.</p>
"""

TICKET_BODY = """
<p><a href="/">← 队列 Queue</a></p>
<h1>工单 Ticket #<span id="ticket-id"></span> <span id="status" class="badge"></span></h1>
<section class="grid">
<div>
<dl id="facts"></dl>
<p><button id="reveal">显示电话 Reveal phone</button> <span id="phone"></span></p>
<h2>摘要 Summary</h2><ol id="summary"></ol>
<h2>内部备注 Internal notes</h2><ul id="notes"></ul>
<form id="note-form"><label for="note">添加备注 Add a note (never sent to the user)</label>
<textarea id="note" rows="2" required></textarea><button type="submit">保存 Save note</button></form>
<h2>回拨任务 Call-backs</h2><ul id="callbacks"></ul>
</div>
<div>
<div class="actions"><button id="claim">认领 Claim</button> <button id="release">放回 Release</button>
<button id="resolve">解决并交还机器人 Resolve</button></div>
<p id="error" class="error" role="alert"></p>
<h2>对话记录 Conversation</h2>
<div id="transcript" class="transcript" aria-live="polite"></div>
<form id="reply-form"><label for="reply">回复用户 Reply to the user</label>
<textarea id="reply" rows="3" required></textarea><button type="submit" id="send">发送 Send</button></form>
</div></section>
"""

DASHBOARD_BODY = """
<h1>运营看板 Operations dashboard</h1>
<section class="cards" id="cards"></section>
<h2>机器人答不了的问题 Questions the bot could not answer</h2>
<p class="hint">按问题分组，供指南团队审核补充内容。Grouped for the guidance team.</p>
<table id="unanswered"><thead><tr><th>问题 Question</th><th>次数 Times</th><th>人数 People</th><th>语言 Lang</th><th>最近 Last</th></tr></thead><tbody></tbody></table>
<h2>提醒 Reminders</h2><div id="reminders"></div>
"""

AUDIT_BODY = """
<h1>审计日志 Audit log</h1>
<table id="audit"><thead><tr><th>时间 Time</th><th>员工 Staff</th><th>操作 Action</th><th>工单 Ticket</th><th>用户 User</th><th>详情 Detail</th></tr></thead><tbody></tbody></table>
"""
