package backup

import (
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/auth"
)

func memDB(t *testing.T) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestAuthRoundTrip: the auth state goes into etcd's auth, authUsers and
// authRoles buckets and comes back unchanged.
func TestAuthRoundTrip(t *testing.T) {
	want := &auth.State{Enabled: true, Revision: 42,
		Users: []*authpb.User{
			{Name: []byte("alice"), Password: []byte("$2a$04$hash"), Roles: []string{"r"}, Options: &authpb.UserAddOptions{}},
			{Name: []byte("root"), Password: []byte("$2a$04$h2"), Roles: []string{"root"}},
			{Name: []byte("svc"), Roles: []string{"r"}, Options: &authpb.UserAddOptions{NoPassword: true}},
		},
		Roles: []*authpb.Role{
			{Name: []byte("r"), KeyPermission: []*authpb.Permission{{Key: []byte("a"), RangeEnd: []byte("b"), PermType: authpb.Permission_READ}}},
			{Name: []byte("root")},
		},
	}
	src := memDB(t)
	b := src.NewBatch()
	if err := auth.Import(b, want); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	bdb, err := bolt.Open(filepath.Join(t.TempDir(), "snap.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	if err := bdb.Update(func(tx *bolt.Tx) error {
		for _, n := range [][]byte{bucketAuth, bucketAuthUsers, bucketAuthRoles} {
			if _, err := tx.CreateBucket(n); err != nil {
				return err
			}
		}
		return writeAuth(tx, src)
	}); err != nil {
		t.Fatal(err)
	}
	dst := memDB(t)
	b = dst.NewBatch()
	if err := bdb.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketAuth).Get([]byte("authEnabled")); len(v) != 1 || v[0] != 1 {
			t.Errorf("authEnabled = %x", v)
		}
		return readAuth(tx, b)
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	got, err := auth.Export(dst)
	if err != nil {
		t.Fatal(err)
	}
	if got.Enabled != want.Enabled || got.Revision != want.Revision || len(got.Users) != 3 || len(got.Roles) != 2 {
		t.Fatalf("got %+v", got)
	}
	for i := range want.Users {
		if !proto.Equal(got.Users[i], want.Users[i]) {
			t.Errorf("user %d: got %v, want %v", i, got.Users[i], want.Users[i])
		}
	}
	for i := range want.Roles {
		if !proto.Equal(got.Roles[i], want.Roles[i]) {
			t.Errorf("role %d: got %v, want %v", i, got.Roles[i], want.Roles[i])
		}
	}
}
