package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// yuvoApp is a client-credentials app registered on the admin API only,
// owning no company, with the scopes of the Yuvo guide's server-to-server
// flow.
type yuvoApp struct {
	registeredClient
	token string
}

func newYuvoApp(t *testing.T, n *node, name string) yuvoApp {
	t.Helper()
	c := n.registerClient(map[string]any{"name": name, "grant_types": []string{"client_credentials"},
		"scopes": []string{"companies:read", "companies:write", "employees:write"}})
	return yuvoApp{registeredClient: c, token: yuvoToken(t, n, c)}
}

// yuvoToken is the guide's token request: HTTP Basic, a form body, the
// trailing slash.
func yuvoToken(t *testing.T, n *node, c registeredClient) string {
	t.Helper()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ClientID+":"+c.ClientSecret))
	code, tok, _ := do(t, "POST", n.URL+"/oauth/token/", map[string]string{"Authorization": basic,
		"Content-Type": "application/x-www-form-urlencoded"}, "grant_type=client_credentials")
	if code != 200 {
		t.Fatalf("token: %d %v", code, tok)
	}
	return tok["access_token"].(string)
}

func (a yuvoApp) auth(extra ...string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + a.token}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

// createCompany is POST /companies with no company header; it returns the
// new id from the answer.
func createCompany(t *testing.T, n *node, a yuvoApp) string {
	t.Helper()
	code, body, hdr := do(t, "POST", n.URL+"/companies", a.auth("Content-Type", "application/json"),
		`{"name":"New Company Pte Ltd","uen_code":"202612345K"}`)
	id, _ := body["id"].(string)
	if code != http.StatusCreated || !strings.HasPrefix(id, "cmp_") || hdr.Get("Location") != "/companies/"+id {
		t.Fatalf("creating a company: %d %v %v", code, body, hdr)
	}
	if body["created_by"] != a.ClientID {
		t.Errorf("the upstream saw client %v, want %s", body["created_by"], a.ClientID)
	}
	return id
}

// useCompany reads and updates the company and pushes employees to it, with
// the app's token, and fails unless every call passes.
func useCompany(t *testing.T, n *node, a yuvoApp, id string) {
	t.Helper()
	code, got, _ := do(t, "GET", n.URL+"/companies", a.auth("x-company-id", id), "")
	if code != 200 || got["company"] != id {
		t.Fatalf("reading the new company on %s: %d %v", n.URL, code, got)
	}
	if code, got, _ = do(t, "PUT", n.URL+"/companies/"+id, a.auth("x-company-id", id, "Content-Type", "application/json"),
		`{"sector":"Technology"}`); code != 200 || got["company"] != id {
		t.Fatalf("updating the new company: %d %v", code, got)
	}
	if code, got, _ = do(t, "POST", n.URL+"/employees", a.auth("x-company-id", id, "Content-Type", "application/json"),
		`[{"name":"Tan Wei","email":"wei@example.com"}]`); code != 200 || got["company"] != id {
		t.Fatalf("pushing employees: %d %v", code, got)
	}
}

// refusedFor checks that a's token may not act for the company.
func refusedFor(t *testing.T, n *node, a yuvoApp, id string) {
	t.Helper()
	code, body, _ := do(t, "GET", n.URL+"/companies", a.auth("x-company-id", id), "")
	if code != 403 || body["error"] != "business_not_allowed" {
		t.Fatalf("another client's token for the new company: %d %v", code, body)
	}
}

// ownedOnAdmin checks the admin API shows the link: the client's
// businesses and the business list.
func ownedOnAdmin(t *testing.T, n *node, client, id string) {
	t.Helper()
	var c registeredClient
	if code := n.adminJSON("GET", "/oauthgate/clients/"+client, nil, &c); code != 200 || !slices.Contains(c.Businesses, id) {
		t.Fatalf("GET /oauthgate/clients/%s: %d, businesses %v, want %s among them", client, code, c.Businesses, id)
	}
	var list []struct {
		ID string `json:"id"`
	}
	if code := n.adminJSON("GET", "/oauthgate/businesses", nil, &list); code != 200 || !slices.ContainsFunc(list, func(b struct {
		ID string `json:"id"`
	}) bool {
		return b.ID == id
	}) {
		t.Fatalf("GET /oauthgate/businesses: %d %v, want %s in it", code, list, id)
	}
}

func linkCount(t *testing.T, n *node, result string) string {
	t.Helper()
	prefix := fmt.Sprintf(`oauthgate_gateway_business_links_total{result="%s"} `, result)
	for line := range strings.SplitSeq(metrics(t, n), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	return "absent"
}

// TestCreateCompanyYuvo is the Yuvo guide's "with this access token you can
// create companies and push employee's data" against
// examples/yuvo/Caddyfile, with nothing registered beforehand but the apps
// (on the admin API): the app creates a company without a header, and at
// once reads, updates and fills it with the same token; another app's
// token is refused for it; the link survives a restart.
func TestCreateCompanyYuvo(t *testing.T) {
	opts := nodeOptions{Caddyfile: "examples/yuvo/Caddyfile", DataDir: t.TempDir(), Port: freePort(t)}
	n := startNode(t, opts)
	app, other := newYuvoApp(t, n, "HR Push"), newYuvoApp(t, n, "Other Payroll")

	// Before: a company header is what the app cannot give yet.
	if code, body, _ := do(t, "GET", n.URL+"/companies", app.auth(), ""); code != 400 || body["error"] != "invalid_request" {
		t.Fatalf("no header on an ordinary route: %d %v", code, body)
	}
	id := createCompany(t, n, app)
	useCompany(t, n, app, id)
	refusedFor(t, n, other, id)
	ownedOnAdmin(t, n, app.ClientID, id)
	if got := linkCount(t, n, "linked"); got != "1" {
		t.Errorf("links made: %s, want 1", got)
	}
	// The other app creates its own, which the first may not use.
	id2 := createCompany(t, n, other)
	useCompany(t, n, other, id2)
	refusedFor(t, n, app, id2)

	// Only client-credentials tokens create here: the route's scope and
	// no more is checked, and a company header is not passed upstream.
	readOnly := n.registerClient(map[string]any{"name": "Reader", "scopes": []string{"companies:read"}})
	ro := yuvoApp{registeredClient: readOnly, token: yuvoToken(t, n, readOnly)}
	if code, body, _ := do(t, "POST", n.URL+"/companies", ro.auth(), `{}`); code != 403 || body["error"] != "insufficient_scope" {
		t.Fatalf("creating without companies:write: %d %v", code, body)
	}

	n.Stop()
	n = startNode(t, opts)
	useCompany(t, n, app, id)
	refusedFor(t, n, other, id)
	ownedOnAdmin(t, n, app.ClientID, id)
	if strings.Contains(n.Logs(), app.token) || strings.Contains(n.Logs(), app.ClientSecret) {
		t.Error("the log holds the app's token or secret")
	}
}

// TestCreateCompanyCluster: two nodes of examples/yuvo/Caddyfile on one
// PostgreSQL database. A company created through one is usable at once on
// that node and on the other, whose client cache held the app before the
// link and whose change feed is hidden meanwhile (so the other node's
// answer cannot depend on how soon the feed tells it). With the database stopped, the creation is answered 503 naming the
// company, "pending", and the gateway completes the link once the
// database is back, with no request of the app's.
func TestCreateCompanyCluster(t *testing.T) {
	pg := startPostgres(t)
	dsn := pg.CreateDB("oauthgate")
	env := []string{"OAUTHGATE_STORE=postgres {env.OAUTHGATE_DSN}", "OAUTHGATE_DSN=" + dsn,
		fmt.Sprintf("OAUTHGATE_ISSUER=http://localhost:%d", freePort(t))}
	a := startNodes(t, nodeOptions{Caddyfile: "examples/yuvo/Caddyfile", Env: env})[0]
	// Node b connects as a role of its own, so that the test can hide the
	// change feed from it (row-level security binds b, not the superuser a
	// runs as): the node's answers must not depend on the feed's timing.
	pgExec(t, dsn, `CREATE ROLE node_b LOGIN`,
		`GRANT ALL ON SCHEMA public TO node_b`,
		`GRANT ALL ON ALL TABLES IN SCHEMA public TO node_b`,
		`GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO node_b`)
	envB := slices.Clone(env)
	envB[1] = "OAUTHGATE_DSN=" + strings.Replace(dsn, "postgres@", "node_b@", 1)
	b := startNodes(t, nodeOptions{Caddyfile: "examples/yuvo/Caddyfile", Env: envB})[0]
	nodes := []*node{a, b}
	app, other := newYuvoApp(t, a, "HR Push"), newYuvoApp(t, a, "Other Payroll")
	// b caches the app: it owns nothing yet.
	refusedFor(t, b, app, "cmp_not_yet")

	// b's feed goes blind: it sees no change recorded from now on.
	pgExec(t, dsn, `DO $$ BEGIN EXECUTE format(
		'CREATE POLICY node_b_blind ON changes TO node_b USING (seq <= %s) WITH CHECK (true)',
		(SELECT COALESCE(MAX(seq), 0) FROM changes)); END $$`,
		`ALTER TABLE changes ENABLE ROW LEVEL SECURITY`)
	id := createCompany(t, a, app)
	// The very next request on b passes: b's cached client does not own
	// the company, so b reads the client from the store before refusing.
	useCompany(t, b, app, id)
	useCompany(t, a, app, id)
	pgExec(t, dsn, `ALTER TABLE changes DISABLE ROW LEVEL SECURITY`)
	refusedFor(t, b, other, id)
	ownedOnAdmin(t, b, app.ClientID, id)

	// The store goes down after the upstream created the company.
	pg.Stop()
	code, body, hdr := do(t, "POST", a.URL+"/companies", app.auth("Content-Type", "application/json"), `{"name":"Outage Pte Ltd"}`)
	pending, _ := body["business_id"].(string)
	if code != 503 || body["error"] != "temporarily_unavailable" || body["link"] != "pending" ||
		!strings.HasPrefix(pending, "cmp_") || !strings.Contains(body["error_description"].(string), pending) ||
		!strings.Contains(body["error_description"].(string), "do not create it again") || hdr.Get("Retry-After") == "" || hdr.Get("Location") != "" {
		t.Fatalf("creation with the store down: %d %v %v", code, body, hdr)
	}
	if got := linkCount(t, a, "failed"); got != "1" {
		t.Errorf("links failed: %s, want 1", got)
	}
	pg.Start()
	start := time.Now()
	for {
		code, _, _ := do(t, "GET", a.URL+"/companies", app.auth("x-company-id", pending), "")
		if code == 200 {
			break
		}
		if time.Since(start) > 90*time.Second {
			t.Fatalf("the pending link was not completed after %v: %d\n%s", time.Since(start), code, a.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the pending link was completed %v after the store came back", time.Since(start))
	ownedOnAdmin(t, b, app.ClientID, pending)
	if got := linkCount(t, a, "completed"); got != "1" {
		t.Errorf("links completed: %s, want 1", got)
	}
	for _, n := range nodes {
		if strings.Contains(n.Logs(), app.token) || strings.Contains(n.Logs(), "New Company Pte Ltd") {
			t.Errorf("node %s logged the token or the upstream's body", n.URL)
		}
	}
}

// TestCreateCompanyAnswers: what each kind of upstream answer to a
// creation gets, with what it links (e2e/testdata/create.Caddyfile).
func TestCreateCompanyAnswers(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: "e2e/testdata/create.Caddyfile"})
	app, other := newYuvoApp(t, n, "HR Push"), newYuvoApp(t, n, "Other Payroll")
	post := func(a yuvoApp, path string) (int, map[string]any, http.Header) {
		return do(t, "POST", n.URL+path, a.auth("Content-Type", "application/json", "x-company-id", "cmp_fixed"), `{}`)
	}
	owns := func(a yuvoApp, id string) bool {
		code, _, _ := do(t, "GET", n.URL+"/companies", a.auth("x-company-id", id), "")
		return code == 200
	}

	// Linked, and the answer released as the upstream gave it. The company
	// header sent along is not trusted for anything.
	if code, body, _ := post(app, "/fixed"); code != 201 || body["id"] != "cmp_fixed" {
		t.Fatalf("/fixed: %d %v", code, body)
	}
	// The same creation replayed links once.
	if code, body, _ := post(app, "/fixed"); code != 201 || body["id"] != "cmp_fixed" {
		t.Fatalf("/fixed again: %d %v", code, body)
	}
	var c registeredClient
	n.adminJSON("GET", "/oauthgate/clients/"+app.ClientID, nil, &c)
	if !slices.Equal(c.Businesses, []string{"cmp_fixed"}) {
		t.Errorf("after a replay the app owns %v", c.Businesses)
	}
	// Another client's id is not linked, and the app is told.
	code, body, hdr := post(other, "/fixed")
	if code != 409 || body["error"] != "business_not_linked" || body["business_id"] != "cmp_fixed" || body["link"] != "refused" || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("another client's id: %d %v", code, body)
	}
	if owns(other, "cmp_fixed") || !owns(app, "cmp_fixed") {
		t.Error("the refused link changed who owns cmp_fixed")
	}
	// Nor is a business of the directory's (a company admin's).
	if code, body, _ := post(app, "/existing"); code != 409 || body["business_id"] != "biz_existing" {
		t.Fatalf("a directory business: %d %v", code, body)
	}
	if owns(app, "biz_existing") {
		t.Error("the app was linked to a directory business")
	}

	// A nested member and the Location header.
	if code, body, _ := post(app, "/nested"); code != 200 || !owns(app, "cmp_nested") {
		t.Fatalf("/nested: %d %v", code, body)
	}
	// An upstream that compresses when asked is asked for the plain answer.
	if code, body, _ := do(t, "POST", n.URL+"/gzipped", app.auth("Accept-Encoding", "gzip"), `{}`); code != 201 || !owns(app, "cmp_gzipped") {
		t.Fatalf("/gzipped: %d %v", code, body)
	}
	if code, _, hdr := post(app, "/located"); code != 201 || hdr.Get("Location") == "" || !owns(app, "cmp_located") {
		t.Fatalf("/located: %d %v", code, hdr)
	}

	// No id, or an invalid one: 502, nothing linked, the body not logged.
	for _, path := range []string{"/noid", "/badid"} {
		code, body, _ := post(app, path)
		if code != 502 || body["error"] != "invalid_upstream_response" || strings.Contains(fmt.Sprint(body), "upstream-body-not-for-logs") {
			t.Fatalf("%s: %d %v", path, code, body)
		}
	}
	if !strings.Contains(n.Logs(), "names no valid business id") || strings.Contains(n.Logs(), "upstream-body-not-for-logs") {
		t.Errorf("the log does not say the answer had no id, or holds its body:\n%s", n.Logs())
	}
	// An upstream failure passes through and links nothing.
	if code, body, _ := post(app, "/fails"); code != 500 || body["error"] != "upstream failure" || owns(app, "cmp_failed") {
		t.Fatalf("/fails: %d %v", code, body)
	}

	// A client of the configuration is refused before the upstream creates.
	static := registeredClient{ClientID: "static-app", ClientSecret: "static-app-secret"}
	sa := yuvoApp{registeredClient: static, token: yuvoToken(t, n, static)}
	if code, body, _ := post(sa, "/nested"); code != 403 || body["error"] != "access_denied" || !strings.Contains(body["error_description"].(string), "declared in the configuration") {
		t.Fatalf("a static client creating: %d %v", code, body)
	}

	n.adminJSON("GET", "/oauthgate/clients/"+app.ClientID, nil, &c)
	if !slices.Equal(c.Businesses, []string{"cmp_fixed", "cmp_gzipped", "cmp_located", "cmp_nested"}) {
		t.Errorf("the app owns %v", c.Businesses)
	}
	for result, want := range map[string]string{"linked": "4", "already_linked": "1", "refused": "3", "no_id": "2", "upstream_refused": "1", "failed": "0"} {
		if got := linkCount(t, n, result); got != want {
			t.Errorf("business_links_total{result=%q} = %s, want %s", result, got, want)
		}
	}
}

// TestCreateCompanyUserTokens: a company admin's token (authorization code)
// is refused on a creation route unless the route says user_tokens pass;
// there it goes upstream without a company header, and nothing is linked.
func TestCreateCompanyUserTokens(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: "e2e/testdata/create.Caddyfile"})
	const callback = "https://app.example/callback"
	c := n.registerClient(map[string]any{"name": "Company Console", "scopes": []string{"companies:read", "companies:write"},
		"grant_types": []string{"authorization_code"}, "redirect_uris": []string{callback}})
	ua := newUserAgent(t)
	cb := ua.authorizeAs(n.URL+"/oauth/authorize?client_id="+c.ClientID+"&response_type=code&scope=companies:write&state=s1&redirect_uri="+
		url.QueryEscape(callback), yuvoAdmin, yuvoAdminPassword, "")
	code := codeFrom(t, cb, "s1", n.URL)
	st, tok, _ := do(t, "POST", n.URL+"/oauth/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		"grant_type=authorization_code&code="+url.QueryEscape(code)+"&redirect_uri="+url.QueryEscape(callback)+
			"&client_id="+c.ClientID+"&client_secret="+url.QueryEscape(c.ClientSecret))
	if st != 200 {
		t.Fatalf("code exchange: %d %v", st, tok)
	}
	user := yuvoApp{registeredClient: c, token: tok["access_token"].(string)}

	st, body, hdr := do(t, "POST", n.URL+"/fixed", user.auth(), `{}`)
	if st != 403 || body["error"] != "access_denied" || !strings.Contains(body["error_description"].(string), "client-credentials") ||
		!strings.Contains(hdr.Get("WWW-Authenticate"), "access_denied") {
		t.Fatalf("a user token on a creation route: %d %v %v", st, body, hdr)
	}
	st, body, _ = do(t, "POST", n.URL+"/teams", user.auth("x-company-id", "biz_existing"), `{}`)
	if st != 201 || body["id"] != "cmp_team" || body["company"] != "" {
		t.Fatalf("a user token where user_tokens pass: %d %v (the upstream must see no company header)", st, body)
	}
	var got registeredClient
	n.adminJSON("GET", "/oauthgate/clients/"+c.ClientID, nil, &got)
	if len(got.Businesses) != 0 {
		t.Errorf("a user token's creation linked %v to the client", got.Businesses)
	}
	if got := linkCount(t, n, "linked"); got != "0" {
		t.Errorf("links made: %s, want 0", got)
	}
}

// TestCreateCompanyAbandonedLink: a node stopped while a link waits for the
// database says, at error level, which link to complete and how; the
// operator's admin-API call completes it, and replaying it changes nothing.
func TestCreateCompanyAbandonedLink(t *testing.T) {
	pg := startPostgres(t)
	dsn := pg.CreateDB("oauthgate")
	opts := nodeOptions{Caddyfile: "examples/yuvo/Caddyfile", Port: freePort(t),
		Env: []string{"OAUTHGATE_STORE=postgres {env.OAUTHGATE_DSN}", "OAUTHGATE_DSN=" + dsn}}
	n := startNode(t, opts)
	app := newYuvoApp(t, n, "HR Push")
	refusedFor(t, n, app, "cmp_warm") // the app is cached

	pg.Stop()
	code, body, _ := do(t, "POST", n.URL+"/companies", app.auth("Content-Type", "application/json"), `{}`)
	id, _ := body["business_id"].(string)
	if code != 503 || body["link"] != "pending" || id == "" {
		t.Fatalf("creation with the store down: %d %v", code, body)
	}
	n.Stop()
	logs := n.Logs()
	var abandoned string
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, "pending link was not completed") {
			abandoned = line
		}
	}
	if !strings.Contains(abandoned, `"level":"error"`) || !strings.Contains(abandoned, id) || !strings.Contains(abandoned, app.ClientID) ||
		!strings.Contains(abandoned, "POST /oauthgate/clients/"+app.ClientID+"/businesses") {
		t.Fatalf("no error log naming the link to complete:\n%s", logs)
	}

	pg.Start()
	n = startNode(t, opts)
	refusedFor(t, n, app, id)
	for range 2 { // idempotent: the second call changes nothing
		var c registeredClient
		if code := n.adminJSON("POST", "/oauthgate/clients/"+app.ClientID+"/businesses", map[string]any{"business_id": id}, &c); code != 200 ||
			!slices.Equal(c.Businesses, []string{id}) {
			t.Fatalf("completing the link: %d %v", code, c.Businesses)
		}
	}
	useCompany(t, n, app, id)
}

// pgExec runs statements, in order, on the database at dsn.
func pgExec(t *testing.T, dsn string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
