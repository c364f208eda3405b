package conversation

import (
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(min int) *time.Time { t := t0.Add(time.Duration(min) * time.Minute); return &t }
func capp(n int) *int       { return &n }

func online(id int64, open int, lastAssigned *time.Time) *baton.Agent {
	return &baton.Agent{UserID: id, Status: baton.AgentOnline, Open: open, LastAssignedAt: lastAssigned, LastActiveAt: at(0)}
}

func TestPickAgent(t *testing.T) {
	now := t0.Add(5 * time.Minute)
	cases := []struct {
		name   string
		agents []*baton.Agent
		want   int64
		ok     bool
	}{
		{"nobody", nil, 0, false},
		{"never assigned goes first", []*baton.Agent{online(1, 0, at(-10)), online(2, 0, nil)}, 2, true},
		{"longest since last assignment", []*baton.Agent{online(1, 0, at(-1)), online(2, 3, at(-5)), online(3, 0, at(-2))}, 2, true},
		{"tie on time: lighter load", []*baton.Agent{online(1, 2, at(-1)), online(2, 1, at(-1))}, 2, true},
		{"full tie: lower id", []*baton.Agent{online(2, 0, nil), online(1, 0, nil)}, 1, true},
		{"at default cap skipped", []*baton.Agent{online(1, 5, nil), online(2, 4, at(-1))}, 2, true},
		{"everyone at cap", []*baton.Agent{online(1, 5, nil), online(2, 7, nil)}, 0, false},
		{"own cap above default", []*baton.Agent{{UserID: 1, Status: baton.AgentOnline, Open: 6, Cap: capp(8), LastActiveAt: at(0)}}, 1, true},
		{"own cap below default", []*baton.Agent{{UserID: 1, Status: baton.AgentOnline, Open: 2, Cap: capp(2), LastActiveAt: at(0)}}, 0, false},
		{"cap zero takes none", []*baton.Agent{{UserID: 1, Status: baton.AgentOnline, Cap: capp(0), LastActiveAt: at(0)}}, 0, false},
		{"away and offline skipped", []*baton.Agent{
			{UserID: 1, Status: baton.AgentAway, LastActiveAt: at(0)},
			{UserID: 2, Status: baton.AgentOffline, LastActiveAt: at(0)},
			online(3, 4, at(-1)),
		}, 3, true},
		{"online but idle counts as away", []*baton.Agent{
			{UserID: 1, Status: baton.AgentOnline, LastActiveAt: at(-20)},
			online(2, 1, at(0)),
		}, 2, true},
		{"online never active counts as away", []*baton.Agent{{UserID: 1, Status: baton.AgentOnline}}, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := PickAgent(c.agents, DefaultAgentCap, now, DefaultIdleAway)
			if got != c.want || ok != c.ok {
				t.Errorf("PickAgent = %d, %v; want %d, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

// TestRoundRobinFairness hands out conversations the way the store does
// (stamping the chosen agent) and checks that loads never differ by more
// than one while nobody is full, and that caps are never exceeded.
func TestRoundRobinFairness(t *testing.T) {
	cases := []struct {
		name     string
		caps     []*int
		convs    int
		wantLoad []int
	}{
		{"even split", []*int{nil, nil, nil}, 9, []int{3, 3, 3}},
		{"uneven count", []*int{nil, nil, nil}, 7, []int{3, 2, 2}},
		{"caps stop the flow", []*int{nil, nil}, 20, []int{5, 5}},
		{"small cap fills first", []*int{capp(1), nil, nil}, 7, []int{1, 3, 3}},
		{"big cap takes the rest", []*int{capp(10), nil}, 12, []int{7, 5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var agents []*baton.Agent
			for i, cp := range c.caps {
				agents = append(agents, &baton.Agent{UserID: int64(i + 1), Status: baton.AgentOnline, Cap: cp, LastActiveAt: &t0})
			}
			now := t0
			for i := 0; i < c.convs; i++ {
				now = now.Add(time.Second)
				id, ok := PickAgent(agents, DefaultAgentCap, now, time.Hour)
				if !ok {
					break
				}
				for _, a := range agents {
					if a.UserID == id {
						n := now
						a.Open, a.LastAssignedAt = a.Open+1, &n
					}
				}
			}
			for i, a := range agents {
				if a.Open != c.wantLoad[i] {
					t.Errorf("agent %d has %d, want %d (loads %v)", a.UserID, a.Open, c.wantLoad[i], loads(agents))
				}
				if a.Open > CapOf(a, DefaultAgentCap) {
					t.Errorf("agent %d over cap: %d", a.UserID, a.Open)
				}
			}
		})
	}
}

func loads(agents []*baton.Agent) []int {
	out := make([]int, len(agents))
	for i, a := range agents {
		out[i] = a.Open
	}
	return out
}

func TestEffectiveStatus(t *testing.T) {
	cases := []struct {
		status baton.AgentStatus
		active *time.Time
		want   baton.AgentStatus
	}{
		{baton.AgentOnline, at(0), baton.AgentOnline},
		{baton.AgentOnline, at(-15), baton.AgentOnline},
		{baton.AgentOnline, at(-16), baton.AgentAway},
		{baton.AgentOnline, nil, baton.AgentAway},
		{baton.AgentAway, at(0), baton.AgentAway},
		{baton.AgentOffline, at(0), baton.AgentOffline},
	}
	for _, c := range cases {
		a := &baton.Agent{Status: c.status, LastActiveAt: c.active}
		if got := EffectiveStatus(a, t0, DefaultIdleAway); got != c.want {
			t.Errorf("%s active %v: %s, want %s", c.status, c.active, got, c.want)
		}
	}
}

func TestMentions(t *testing.T) {
	agents := []*baton.Agent{{UserID: 1, Name: "Ann Lee"}, {UserID: 2, Name: "bob@example.com"}, {UserID: 3, Name: "Zoë Ng"}, {UserID: 4, Name: ""}}
	cases := []struct {
		text string
		want []int64
	}{
		{"no mention", nil},
		{"@ann please look", []int64{1}},
		{"@Ann and @ANN again", []int64{1}},
		{"cc @bob, @zoë.", []int64{2, 3}},
		{"mail ann@example.com", nil},
		{"@annie is someone else", nil},
		{"@", nil},
	}
	for _, c := range cases {
		got := Mentions(c.text, agents)
		if len(got) != len(c.want) {
			t.Errorf("Mentions(%q) = %v, want %v", c.text, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("Mentions(%q) = %v, want %v", c.text, got, c.want)
			}
		}
	}
}

func TestTagNameAndCanned(t *testing.T) {
	tags := []struct {
		in, want string
		ok       bool
	}{
		{"Billing", "billing", true},
		{"  VIP  ", "vip", true},
		{"", "", false},
		{"a,b", "a b", true},
		{string(make([]byte, 41)), "", false},
	}
	for _, c := range tags {
		got, err := TagName(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("TagName(%q) = %q, %v; want %q ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
	canned := []struct{ body, first, agent, want string }{
		{"Hi {{first_name}}, {{agent_name}} here.", "Ana", "Bo", "Hi Ana, Bo here."},
		{"Hi {{first_name}}", "", "Bo", "Hi there"},
		{"{{unknown}} stays", "Ana", "Bo", "{{unknown}} stays"},
	}
	for _, c := range canned {
		if got := ExpandCanned(c.body, c.first, c.agent); got != c.want {
			t.Errorf("ExpandCanned(%q) = %q, want %q", c.body, got, c.want)
		}
	}
}
