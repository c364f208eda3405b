package graph

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestThreadOwner(t *testing.T) {
	tests := []struct {
		name   string
		status int
		reply  string
		want   Owner
	}{
		{"wrapped string id", 200, `{"data":[{"thread_owner":{"app_id":"1500000001"}}]}`,
			Owner{AppID: "1500000001"}},
		{"idle", 200, `{"data":[]}`, Owner{Idle: true}},
		{"unwrapped numeric id above 2^53", 200, `{"thread_owner":{"app_id":1517776481860111}}`,
			Owner{AppID: "1517776481860111"}},
		{"unwrapped id that a float would round", 200, `{"thread_owner":{"app_id":9007199254740993}}`,
			Owner{AppID: "9007199254740993"}},
		{"hidden", 400, envelope(100, 2018234,
			"(#100) Denying visibility of any secondary receiver to another secondary receiver other than itself.", ""),
			Owner{Hidden: true}},
		{"routing-cr expiration", 200, `{"data":[{"thread_owner":{"app_id":"2500000002","expiration":1717200000}}]}`,
			Owner{AppID: "2500000002", Expiration: time.Unix(1717200000, 0).UTC()}},
		{"malformed expiration ignored", 200, `{"data":[{"thread_owner":{"app_id":"2500000002","expiration":"soon"}}]}`,
			Owner{AppID: "2500000002"}},
		{"null owner", 200, `{"data":[{"thread_owner":null}]}`, Owner{Idle: true}},
		{"null app id", 200, `{"thread_owner":{"app_id":null}}`, Owner{Idle: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGraph(t, tt.status, tt.reply)
			got, err := f.client().ThreadOwner(context.Background(), "700800900")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("owner = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestThreadOwnerFailures(t *testing.T) {
	tests := []struct {
		name, reply string
		status      int
		wantTimeout bool
	}{
		{"neither form", `{}`, 200, true},
		{"float id", `{"thread_owner":{"app_id":1.5e15}}`, 200, true},
		{"data not a list", `{"data":{"x":1}}`, 200, true},
		{"graph error", envelope(100, 2018001, "(#100) No matching user found", ""), 400, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGraph(t, tt.status, tt.reply)
			o, err := f.client().ThreadOwner(context.Background(), "700800900")
			if err == nil {
				t.Fatalf("owner = %+v, want an error", o)
			}
			if IsTimeout(err) != tt.wantTimeout {
				t.Errorf("IsTimeout = %v, want %v (%v)", IsTimeout(err), tt.wantTimeout, err)
			}
			if o != (Owner{}) {
				t.Errorf("owner = %+v on error", o)
			}
		})
	}
}

func TestUserProfile(t *testing.T) {
	tests := []struct {
		name, reply string
		want        Profile
	}{
		{"emulator answer with escaped slashes",
			`{"first_name":"Peter","last_name":"Chang","profile_pic":"http:\/\/127.0.0.1:8081\/pic\/700800900.jpg?ext=1717200000","id":"700800900"}`,
			Profile{FirstName: "Peter", LastName: "Chang", Name: "Peter Chang",
				ProfilePic: "http://127.0.0.1:8081/pic/700800900.jpg?ext=1717200000",
				PicExpires: time.Unix(1717200000, 0).UTC()}},
		{"ext among other parameters",
			`{"first_name":"Ana","profile_pic":"https://platform-lookaside.fbsbx.com/platform/profilepic/?psid=1&width=1024&ext=1720000000&hash=Ab"}`,
			Profile{FirstName: "Ana", Name: "Ana",
				ProfilePic: "https://platform-lookaside.fbsbx.com/platform/profilepic/?psid=1&width=1024&ext=1720000000&hash=Ab",
				PicExpires: time.Unix(1720000000, 0).UTC()}},
		{"cdn hex oe",
			`{"first_name":"Li","profile_pic":"https://scontent.xx.fbcdn.net/v/t1.0-1/p.jpg?oe=66A0B380"}`,
			Profile{FirstName: "Li", Name: "Li", ProfilePic: "https://scontent.xx.fbcdn.net/v/t1.0-1/p.jpg?oe=66A0B380",
				PicExpires: time.Unix(0x66A0B380, 0).UTC()}},
		{"no expiry in url", `{"first_name":"Jo","last_name":"Lee","profile_pic":"https://x/p.jpg?ext=never"}`,
			Profile{FirstName: "Jo", LastName: "Lee", Name: "Jo Lee", ProfilePic: "https://x/p.jpg?ext=never"}},
		{"name from graph wins", `{"name":"Dr. Jo Lee","first_name":"Jo","last_name":"Lee"}`,
			Profile{FirstName: "Jo", LastName: "Lee", Name: "Dr. Jo Lee"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGraph(t, 200, tt.reply)
			got, err := f.client().UserProfile(context.Background(), "700800900")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("profile = %+v\nwant      %+v", got, tt.want)
			}
		})
	}
}

// TestHiddenProfile checks that the older `{}` and Graph's 2018218 reach the
// caller as the same *Error.
func TestHiddenProfile(t *testing.T) {
	for _, tc := range []struct {
		status int
		reply  string
	}{
		{200, `{}`},
		{200, `{"id":"700800900"}`},
		{400, envelope(100, 2018218, "(#100) No profile available for this user.", "")},
	} {
		f := newFakeGraph(t, tc.status, tc.reply)
		_, err := f.client().UserProfile(context.Background(), "700800900")
		var ge *Error
		if !errors.As(err, &ge) || ge.Code != 100 || ge.Subcode != 2018218 {
			t.Errorf("reply %s: err = %v, want *Error 100/2018218", tc.reply, err)
		}
		if !IsNoProfile(err) || IsTransient(err) {
			t.Errorf("reply %s: IsNoProfile=%v IsTransient=%v", tc.reply, IsNoProfile(err), IsTransient(err))
		}
	}
}
