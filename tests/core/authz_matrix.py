"""Who may call each route: the authorisation matrix, one entry per (method, route template).

`tests/core/test_authorisation_matrix.py` makes every request of this table, as every principal,
on its own resource and on another's, and fails when the answer differs from the entry; it also
fails when a route of the app has no entry here, or an entry names a route that is gone.

Each entry is a row of eleven cells, one per principal (`PRINCIPALS`, in that order):

- `yes`: allowed (own resource and another's alike, or a route that names no resource);
- `no`: denied (401/403, or 404 where another's resource is "not found");
- `own`: allowed on the principal's own resource only, denied on another's.

The principals: `anon` no token; `user` a mini-program user without a real name; `citiz` a
real-name citizen; `rep` the legal representative of enterprise E1; `agent` E1's authorised
agent; `clerk` a window clerk of hall A; `mgr` hall A's manager; `revwr` a reviewer of department A
(城管); `offcr` a policy officer of department A; `admin`; `disp` hall A's display token.
Console pages (/console/...) are called with a console session for staff; the others have none
(the display has its screen token in the cookie).

"Own" is, for citizens, their ticket, appointment, application, licence, binding or invitation
and enterprise E1 (the other: a stranger's, enterprise E2); for hall staff and the display, hall A
and its windows, categories, codes, screens, slots, tickets and follow-ups (the other: hall B);
for reviewers and officers, department A's applications, inspections, licences, seals,
follow-ups and policies (the other: department B, 水务局); for staff accounts, oneself (the other:
another clerk). Admins are unscoped, so `yes` where they may act at all.

To add a route: add its entry in its group, deciding for each principal; a route whose body or
query (not its path) names the hall or department also goes into `SIDED_BY_BODY` in the test,
with a body in `BODIES` that passes validation, so that the scope is what refuses.
"""

PRINCIPALS = (
    "anon",
    "user",
    "citizen",
    "rep",
    "agent",
    "clerk",
    "manager",
    "reviewer",
    "officer",
    "admin",
    "display",
)
ALLOW, DENY, OWN = "allow", "deny", "own"

# fmt: off
MATRIX: dict[str, str] = {
    # health, public verification pages, CRLs, API docs assets
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /healthz":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    # Prometheus only, with METRICS_TOKEN: no principal here holds it (the test's callers come
    # from outside the machine, where development's loopback exception does not apply).
    "GET /metrics":
        "no    no    no    no    no    no    no    no    no    no    no",
    "GET /readyz":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "GET /seals/crl/<string:name>.crl":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "GET /s/<string:code>":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "GET /api/docs-assets/<path:filename>":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",

    # /console/admin: the staff console, a console session (staff) or none
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /console/admin":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "GET /console/admin/halls":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "GET /console/admin/halls/<int:hall_id>":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /console/admin/halls/<int:hall_id>/categories":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "GET /console/admin/halls/<int:hall_id>/categories/<int:category_id>":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /console/admin/halls/<int:hall_id>/categories/<int:category_id>":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /console/admin/halls/<int:hall_id>/windows":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "GET /console/admin/halls/<int:hall_id>/windows/<int:window_id>":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /console/admin/halls/<int:hall_id>/windows/<int:window_id>":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /console/admin/halls/<int:hall_id>/windows/<int:window_id>/close":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /console/admin/halls/<int:hall_id>/displays":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /console/admin/halls/<int:hall_id>/displays/<int:display_id>/revoke":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "GET /console/admin/staff":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "GET /console/admin/staff/new":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /console/admin/staff":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "GET /console/admin/staff/<int:staff_id>":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /console/admin/staff/<int:staff_id>/roles":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /console/admin/staff/<int:staff_id>/unlock":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /console/admin/staff/<int:staff_id>/active":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /console/admin/staff/<int:staff_id>/reset-password":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "GET /console/admin/seals":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /console/admin/seals/<int:seal_id>/<string:action>":
        "no    no    no    no    no    no    no    no    no    yes   no",

    # /console/dashboard: hall managers' dashboard
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /console/dashboard":
        "no    no    no    no    no    no    yes   no    no    yes   no",
    "GET /console/dashboard/halls/<int:hall_id>":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "POST /console/dashboard/halls/<int:hall_id>/follow-ups/<int:follow_up_id>/close":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "GET /console/dashboard/halls/<int:hall_id>/stats.csv":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "GET /console/dashboard/district":
        "no    no    no    no    no    no    no    no    no    yes   no",

    # /console/ (home)
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /console/":
        "no    no    no    no    no    yes   yes   yes   yes   yes   no",

    # /console/login, /console/logout
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /console/login":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "POST /console/login":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "GET /console/login/scan":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "POST /console/logout":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",

    # /console/account
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /console/account":
        "no    no    no    no    no    yes   yes   yes   yes   yes   no",
    "GET /console/account/link":
        "no    no    no    no    no    yes   yes   yes   yes   yes   no",
    "POST /console/account/unlink":
        "no    no    no    no    no    yes   yes   yes   yes   yes   no",

    # /console/policies: the policy desk
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /console/policies":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "GET /console/policies/new":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "POST /console/policies/new":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "GET /console/policies/<int:policy_id>/edit":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "POST /console/policies/<int:policy_id>/edit":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "POST /console/policies/preview":
        "no    no    no    no    no    no    no    no    yes   yes   no",
    "GET /console/policies/<int:policy_id>":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "GET /console/policies/<int:policy_id>/reach":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "GET /console/policies/<int:policy_id>/stats":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "POST /console/policies/<int:policy_id>/publish":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "POST /console/policies/<int:policy_id>/withdraw":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "GET /console/policies/<int:policy_id>/beneficiaries.csv":
        "no    no    no    no    no    no    no    no    own   yes   no",

    # /console/review: the reviewer desk
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /console/review":
        "no    no    no    no    no    no    no    yes   no    yes   no",
    "GET /console/review/<string:number>":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "GET /console/review/<string:number>/materials/<string:material_id>":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /console/review/<string:number>/claim":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /console/review/<string:number>/return":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /console/review/<string:number>/transfer":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /console/review/<string:number>/approve":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /console/review/<string:number>/reject":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /console/review/<string:number>/request-supplement":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "GET /console/review/inspections":
        "no    no    no    no    no    no    no    yes   no    yes   no",
    "POST /console/review/inspections/<int:inspection_id>/rectify":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /console/review/inspections/<int:inspection_id>/confirm":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /console/review/inspections/<int:inspection_id>/revoke":
        "no    no    no    no    no    no    no    own   no    yes   no",

    # /console/screen: a hall TV with its display token
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /console/screen":
        "no    no    no    no    no    no    no    no    no    no    yes",
    "GET /console/screen/code":
        "no    no    no    no    no    no    no    no    no    no    yes",

    # /console/terminal: the window terminal
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /console/terminal":
        "no    no    no    no    no    yes   yes   no    no    yes   no",
    "GET /console/terminal/windows/<int:window_id>":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "GET /console/terminal/windows/<int:window_id>/waiting":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /console/terminal/windows/<int:window_id>/status":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /console/terminal/windows/<int:window_id>/call-next":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /console/terminal/windows/<int:window_id>/tickets/<int:ticket_id>/<string:action>":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /console/terminal/windows/<int:window_id>/identify":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /console/terminal/windows/<int:window_id>/take":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /console/terminal/windows/<int:window_id>/check-in":
        "no    no    no    no    no    own   own   no    no    yes   no",

    # identity: citizens' login and account
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "POST /api/v1/auth/wechat/login":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "POST /api/v1/auth/refresh":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "POST /api/v1/auth/logout":
        "no    yes   yes   yes   yes   yes   yes   yes   yes   yes   no",
    "GET /api/v1/me":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",
    "POST /api/v1/me/phone":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",
    "POST /api/v1/me/realname":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",
    "POST /api/v1/me/realname/face":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",

    # staff: login, own account, accounts (admin)
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "POST /api/v1/staff/auth/login":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "GET /api/v1/staff/me":
        "no    no    no    no    no    yes   yes   yes   yes   yes   no",
    "POST /api/v1/staff/me/password":
        "no    no    no    no    no    yes   yes   yes   yes   yes   no",
    "GET /api/v1/staff/accounts":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /api/v1/staff/accounts":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "GET /api/v1/staff/accounts/<int:staff_id>":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "PATCH /api/v1/staff/accounts/<int:staff_id>":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /api/v1/staff/accounts/<int:staff_id>/unlock":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /api/v1/staff/accounts/<int:staff_id>/reset-password":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /api/v1/staff/scan-confirmations":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",

    # enterprises: bindings and agents
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /api/v1/me/enterprises":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",
    # Binding as legal representative needs a face verified recently (only `rep` has one; E1 is
    # already theirs, so theirs is a 409).
    "POST /api/v1/me/enterprises":
        "no    no    no    yes   no    no    no    no    no    no    no",
    "DELETE /api/v1/me/enterprises/<int:binding_id>":
        "no    no    no    own   own   no    no    no    no    no    no",
    "GET /api/v1/enterprises/<int:enterprise_id>":
        "no    no    no    own   own   no    no    no    no    no    no",
    "GET /api/v1/enterprises/<int:enterprise_id>/agents":
        "no    no    no    own   no    no    no    no    no    no    no",
    "DELETE /api/v1/enterprises/<int:enterprise_id>/agents/<int:binding_id>":
        "no    no    no    own   no    no    no    no    no    no    no",
    "GET /api/v1/enterprises/<int:enterprise_id>/agent-authorisations":
        "no    no    no    own   no    no    no    no    no    no    no",
    "POST /api/v1/enterprises/<int:enterprise_id>/agent-authorisations":
        "no    no    no    own   no    no    no    no    no    no    no",
    "DELETE /api/v1/enterprises/<int:enterprise_id>/agent-authorisations/<int:authorisation_id>":
        "no    no    no    own   no    no    no    no    no    no    no",
    "GET /api/v1/me/agent-authorisations":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",
    "POST /api/v1/me/agent-authorisations/<int:authorisation_id>/accept":
        "no    no    own   no    no    no    no    no    no    no    no",
    "POST /api/v1/me/agent-authorisations/<int:authorisation_id>/decline":
        "no    no    own   no    no    no    no    no    no    no    no",

    # notifications
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /api/v1/me/subscriptions":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",
    "POST /api/v1/me/subscriptions":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",
    "GET /api/v1/me/notifications":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",

    # halls: profile, hours, categories, windows, codes, screens
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /api/v1/halls":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "GET /api/v1/halls/<int:hall_id>":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "PUT /api/v1/halls/<int:hall_id>/profile":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "PUT /api/v1/halls/<int:hall_id>/hours":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "DELETE /api/v1/halls/<int:hall_id>/special-days/<string:day>":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "PUT /api/v1/halls/<int:hall_id>/special-days/<string:day>":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "GET /api/v1/halls/<int:hall_id>/categories":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "POST /api/v1/halls/<int:hall_id>/categories":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "PATCH /api/v1/halls/categories/<int:category_id>":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "GET /api/v1/halls/<int:hall_id>/windows":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "POST /api/v1/halls/<int:hall_id>/windows":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "PATCH /api/v1/halls/windows/<int:window_id>":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "GET /api/v1/halls/<int:hall_id>/codes":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "POST /api/v1/halls/<int:hall_id>/codes":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "POST /api/v1/halls/<int:hall_id>/codes/<int:code_id>/revoke":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "GET /api/v1/halls/<int:hall_id>/codes/<int:code_id>/qr.<string:fmt>":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "GET /api/v1/halls/<int:hall_id>/codes/<int:code_id>/wxacode.png":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "GET /api/v1/halls/<int:hall_id>/codes/<int:code_id>/poster.<any(pdf, png):fmt>":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "GET /api/v1/halls/<int:hall_id>/displays":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "POST /api/v1/halls/<int:hall_id>/displays":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "POST /api/v1/halls/<int:hall_id>/displays/<int:display_id>/revoke":
        "no    no    no    no    no    no    own   no    no    yes   no",

    # queue: citizens
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "POST /api/v1/queue/scan":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",
    "GET /api/v1/queue/tickets":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",
    "POST /api/v1/queue/tickets":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",
    "GET /api/v1/queue/tickets/<int:ticket_id>":
        "no    own   own   own   own   no    no    no    no    no    no",
    "POST /api/v1/queue/tickets/<int:ticket_id>/cancel":
        "no    own   own   own   own   no    no    no    no    no    no",
    "GET /api/v1/queue/personal-code":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",

    # queue: window terminals
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "POST /api/v1/terminal/windows/<int:window_id>/identify":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /api/v1/terminal/windows/<int:window_id>/take":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /api/v1/terminal/windows/<int:window_id>/green-channel":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "GET /api/v1/terminal/windows/<int:window_id>":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /api/v1/terminal/windows/<int:window_id>/status":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /api/v1/terminal/windows/<int:window_id>/call-next":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /api/v1/terminal/windows/<int:window_id>/call":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /api/v1/terminal/windows/<int:window_id>/tickets/<int:ticket_id>/recall":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /api/v1/terminal/windows/<int:window_id>/tickets/<int:ticket_id>/no-show":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /api/v1/terminal/windows/<int:window_id>/tickets/<int:ticket_id>/serve":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /api/v1/terminal/windows/<int:window_id>/tickets/<int:ticket_id>/hold":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /api/v1/terminal/windows/<int:window_id>/tickets/<int:ticket_id>/resume":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /api/v1/terminal/windows/<int:window_id>/tickets/<int:ticket_id>/finish":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /api/v1/terminal/windows/<int:window_id>/tickets/<int:ticket_id>/transfer":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "POST /api/v1/terminal/halls/<int:hall_id>/tickets/<int:ticket_id>/late-return":
        "no    no    no    no    no    own   own   no    no    yes   no",

    # queue: hall screens
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /api/v1/screen/halls/<int:hall_id>/board":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "GET /api/v1/screen/halls/<int:hall_id>/events":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "GET /api/v1/screen/halls/<int:hall_id>/dynamic-code":
        "no    no    no    no    no    own   own   no    no    yes   own",

    # appointments
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /api/v1/halls/<int:hall_id>/appointment-slots":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "PATCH /api/v1/appointment-slots/<int:slot_id>":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "GET /api/v1/me/appointments":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",
    "POST /api/v1/me/appointments":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",
    "GET /api/v1/me/appointments/<int:appointment_id>":
        "no    own   own   own   own   no    no    no    no    no    no",
    "POST /api/v1/me/appointments/<int:appointment_id>/cancel":
        "no    own   own   own   own   no    no    no    no    no    no",
    "POST /api/v1/me/appointments/<int:appointment_id>/check-in":
        "no    own   own   own   own   no    no    no    no    no    no",
    "POST /api/v1/terminal/appointments/check-in":
        "no    no    no    no    no    own   own   no    no    yes   no",

    # ratings (好差评) and queue statistics
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /api/v1/halls/<int:hall_id>/appointments":
        "no    no    no    no    no    own   own   no    no    yes   no",
    "GET /api/v1/me/tickets/<int:ticket_id>/rating":
        "no    own   own   own   own   no    no    no    no    no    no",
    "POST /api/v1/me/tickets/<int:ticket_id>/rating":
        "no    own   own   own   own   no    no    no    no    no    no",
    "GET /api/v1/halls/<int:hall_id>/rating-follow-ups":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "GET /api/v1/applications/<string:number>/rating":
        "no    own   own   own   own   no    no    no    no    no    no",
    "POST /api/v1/applications/<string:number>/rating":
        "no    own   own   own   own   no    no    no    no    no    no",
    "GET /api/v1/departments/<int:department_id>/rating-follow-ups":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /api/v1/rating-follow-ups/<int:follow_up_id>/close":
        "no    no    no    no    no    no    own   own   no    yes   no",
    "GET /api/v1/halls/<int:hall_id>/ratings/summary":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "GET /api/v1/halls/<int:hall_id>/queue-stats":
        "no    no    no    no    no    no    own   no    no    yes   no",
    "GET /api/v1/halls/<int:hall_id>/queue-stats.csv":
        "no    no    no    no    no    no    own   no    no    yes   no",

    # policies: officers
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /api/v1/staff/policies":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "POST /api/v1/staff/policies":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "GET /api/v1/staff/policies/<int:policy_id>":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "PATCH /api/v1/staff/policies/<int:policy_id>":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "GET /api/v1/staff/policies/<int:policy_id>/preview":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "POST /api/v1/staff/policies/<int:policy_id>/publish":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "POST /api/v1/staff/policies/<int:policy_id>/withdraw":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "GET /api/v1/staff/policies/<int:policy_id>/stats":
        "no    no    no    no    no    no    no    no    own   yes   no",
    "GET /api/v1/staff/policy-facts/pending":
        "no    no    no    no    no    no    no    no    yes   yes   no",
    "POST /api/v1/staff/enterprises/<int:enterprise_id>/policy-facts/review":
        "no    no    no    no    no    no    no    no    yes   yes   no",
    "GET /api/v1/staff/policies/<int:policy_id>/beneficiaries.csv":
        "no    no    no    no    no    no    no    no    own   yes   no",

    # policies: enterprises' feed, profile and account; the public calculator
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /api/v1/enterprises/<int:enterprise_id>/policy-profile":
        "no    no    no    own   own   no    no    no    no    no    no",
    "PATCH /api/v1/enterprises/<int:enterprise_id>/policy-profile":
        "no    no    no    own   own   no    no    no    no    no    no",
    "GET /api/v1/enterprises/<int:enterprise_id>/policy-profile/history":
        "no    no    no    own   own   no    no    no    no    no    no",
    "GET /api/v1/enterprises/<int:enterprise_id>/policy-feed":
        "no    no    no    own   own   no    no    no    no    no    no",
    "GET /api/v1/enterprises/<int:enterprise_id>/policy-feed/<int:policy_id>":
        "no    no    no    own   own   no    no    no    no    no    no",
    "PUT /api/v1/enterprises/<int:enterprise_id>/policy-feed/<int:policy_id>":
        "no    no    no    own   own   no    no    no    no    no    no",
    "GET /api/v1/enterprises/<int:enterprise_id>/policy-near-misses":
        "no    no    no    own   own   no    no    no    no    no    no",
    "GET /api/v1/enterprises/<int:enterprise_id>/policy-account":
        "no    no    no    own   own   no    no    no    no    no    no",
    "PUT /api/v1/enterprises/<int:enterprise_id>/policy-account":
        "no    no    no    own   no    no    no    no    no    no    no",
    "DELETE /api/v1/enterprises/<int:enterprise_id>/policy-push-optout":
        "no    no    no    own   own   no    no    no    no    no    no",
    "PUT /api/v1/enterprises/<int:enterprise_id>/policy-push-optout":
        "no    no    no    own   own   no    no    no    no    no    no",
    "POST /api/v1/policy-calculator":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",

    # seals
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /api/v1/seals":
        "no    no    no    no    no    no    no    yes   no    yes   no",
    "GET /api/v1/seals/templates":
        "no    no    no    no    no    yes   yes   yes   yes   yes   no",
    # A reviewer sees only their departments' seals (as in the list): another department's
    # seal image, a clean copy of its official seal, is "not found".
    "GET /api/v1/seals/<int:seal_id>/image":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /api/v1/seals/<int:seal_id>/suspend":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /api/v1/seals/<int:seal_id>/reactivate":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "POST /api/v1/seals/<int:seal_id>/revoke":
        "no    no    no    no    no    no    no    no    no    yes   no",
    # Only the roles a seal authorises apply it (its department's reviewers), never an admin.
    "POST /api/v1/seals/<int:seal_id>/documents":
        "no    no    no    no    no    no    no    own   no    no    no",
    "POST /api/v1/seals/documents/<string:public_id>/revoke":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "GET /api/v1/seals/verify/<string:code>":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "GET /api/v1/seals/verify/<string:code>/pdf":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "POST /api/v1/seals/verify":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",

    # matters
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /api/v1/matters":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "POST /api/v1/matters":
        "no    no    no    no    no    no    no    no    no    yes   no",
    "GET /api/v1/matters/<string:code>":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "GET /api/v1/matters/<string:code>/versions/<int:version>":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "GET /api/v1/matters/<string:code>/workflow":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "GET /api/v1/matters/<string:code>/parameters":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "PUT /api/v1/matters/<string:code>/parameters/<string:name>":
        "no    no    no    no    no    no    no    own   no    yes   no",

    # applications: the applicant
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /api/v1/applications":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",
    # Filing and submitting need a verified real name; signing, a face verified recently (only
    # the legal representative here has one): a refusal of the identity level is a 403.
    "POST /api/v1/applications":
        "no    no    yes   yes   yes   no    no    no    no    no    no",
    "GET /api/v1/applications/<string:number>":
        "no    own   own   own   own   no    no    no    no    no    no",
    "PUT /api/v1/applications/<string:number>/form":
        "no    own   own   own   own   no    no    no    no    no    no",
    "POST /api/v1/applications/<string:number>/signature":
        "no    no    no    own   no    no    no    no    no    no    no",
    "POST /api/v1/applications/<string:number>/submit":
        "no    no    own   own   own   no    no    no    no    no    no",
    "POST /api/v1/applications/<string:number>/withdraw":
        "no    own   own   own   own   no    no    no    no    no    no",
    "POST /api/v1/applications/<string:number>/resubmit":
        "no    own   own   own   own   no    no    no    no    no    no",
    "GET /api/v1/applications/<string:number>/materials/<string:material_id>":
        "no    own   own   own   own   no    no    no    no    no    no",
    "POST /api/v1/applications/<string:number>/materials/<string:material_id>":
        "no    own   own   own   own   no    no    no    no    no    no",
    "POST /api/v1/applications/<string:number>/materials/<string:material_id>/licence":
        "no    own   own   own   own   no    no    no    no    no    no",

    # review: reviewers and inspections
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /api/v1/review/applications":
        "no    no    no    no    no    no    no    yes   no    yes   no",
    "GET /api/v1/review/applications/statistics":
        "no    no    no    no    no    no    no    yes   no    yes   no",
    "GET /api/v1/review/applications/<string:number>":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "GET /api/v1/review/applications/<string:number>/materials/<string:material_id>":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /api/v1/review/applications/<string:number>/claim":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /api/v1/review/applications/<string:number>/return":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /api/v1/review/applications/<string:number>/transfer":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /api/v1/review/applications/<string:number>/request-supplement":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /api/v1/review/applications/<string:number>/reject":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /api/v1/review/applications/<string:number>/approve":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "GET /api/v1/review/applications/<string:number>/decision/replay":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "GET /api/v1/review/inspections":
        "no    no    no    no    no    no    no    yes   no    yes   no",
    "POST /api/v1/review/inspections/<int:inspection_id>/confirm":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /api/v1/review/inspections/<int:inspection_id>/rectify":
        "no    no    no    no    no    no    no    own   no    yes   no",
    "POST /api/v1/review/inspections/<int:inspection_id>/revoke":
        "no    no    no    no    no    no    no    own   no    yes   no",

    # licences
    #    anon  user  citiz rep   agent clerk mgr   revwr offcr admin disp
    "GET /api/v1/me/licences":
        "no    yes   yes   yes   yes   no    no    no    no    no    no",
    "GET /api/v1/me/licences/<int:licence_id>":
        "no    own   own   own   own   no    no    no    no    no    no",
    "POST /api/v1/me/licences/<int:licence_id>/show-code":
        "no    own   own   own   own   no    no    no    no    no    no",
    "GET /api/v1/licences/verify/<string:token>":
        "yes   yes   yes   yes   yes   yes   yes   yes   yes   yes   yes",
    "POST /api/v1/licences/<int:licence_id>/revoke":
        "no    no    no    no    no    no    no    own   no    yes   no",
}
# fmt: on
