package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oauthgate/oauthgate/policies"
	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// BusinessSpec names a business a user administers.
type BusinessSpec struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// UserSpec describes a user of the built-in directory, as the admin API
// and the configuration declare one.
type UserSpec struct {
	// ID defaults to a random id (admin API) or one derived from the
	// e-mail (EnsureUser, so every node of a cluster picks the same).
	ID       string `json:"id,omitempty"`
	Email    string `json:"email"`
	Password string `json:"password,omitempty"`
	// PasswordHash is a bcrypt hash, instead of Password (configuration
	// only).
	PasswordHash string `json:"-"`
	Name         string `json:"name,omitempty"`
	// Businesses the user administers; at least one.
	Businesses []BusinessSpec `json:"businesses"`
	// CurrentBusiness defaults to the first of Businesses.
	CurrentBusiness string `json:"current_business,omitempty"`
}

// userView is how the admin API shows a user: never with the hash.
type userView struct {
	ID              string         `json:"id"`
	Email           string         `json:"email"`
	Name            string         `json:"name"`
	Businesses      []BusinessSpec `json:"businesses"`
	CurrentBusiness string         `json:"current_business"`
	// HasPassword is false for users mirrored from a platform.
	HasPassword bool      `json:"has_password"`
	CreatedAt   time.Time `json:"created_at"`
}

type businessView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *Server) adminDirectoryRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /oauthgate/users", s.adminCreateUser)
	mux.HandleFunc("GET /oauthgate/users", s.adminListUsers)
	mux.HandleFunc("GET /oauthgate/users/{id}", s.adminGetUser)
	mux.HandleFunc("DELETE /oauthgate/users/{id}", s.adminDeleteUser)
	mux.HandleFunc("GET /oauthgate/businesses", s.adminListBusinesses)
	mux.HandleFunc("POST /oauthgate/businesses", s.adminUpsertBusiness)
}

// CheckUser reports what EnsureUser would refuse in spec (e-mail, ids,
// password or hash, businesses) without touching the store or hashing.
func CheckUser(spec UserSpec) error {
	spec.Businesses = append([]BusinessSpec(nil), spec.Businesses...)
	return spec.normalize()
}

// normalize validates spec and fills its defaults.
func (spec *UserSpec) normalize() error {
	spec.Email = strings.ToLower(strings.TrimSpace(spec.Email))
	if !validEmail(spec.Email) {
		return fmt.Errorf("email %q is not a valid e-mail address", spec.Email)
	}
	if spec.ID != "" && !policies.ValidBusinessID(spec.ID) {
		return fmt.Errorf("id %q: want 1 to 128 characters of A-Z a-z 0-9 . _ : -", spec.ID)
	}
	spec.Name = strings.TrimSpace(spec.Name)
	if spec.Name == "" {
		spec.Name = spec.Email[:strings.LastIndexByte(spec.Email, '@')]
	}
	if len(spec.Name) > 200 {
		return errors.New("name must be at most 200 characters")
	}
	switch {
	case spec.PasswordHash != "" && spec.Password != "":
		return errors.New("give a password or a password hash, not both")
	case spec.PasswordHash != "":
		if err := validPasswordHash(spec.PasswordHash); err != nil {
			return err
		}
	default:
		if err := checkNewPassword(spec.Password); err != nil {
			return err
		}
	}
	if len(spec.Businesses) == 0 {
		return errors.New("businesses: a user must administer at least one business")
	}
	seen := map[string]bool{}
	for i := range spec.Businesses {
		b := &spec.Businesses[i]
		if !policies.ValidBusinessID(b.ID) {
			return fmt.Errorf("business id %q: want 1 to 128 characters of A-Z a-z 0-9 . _ : -", b.ID)
		}
		if seen[b.ID] {
			return fmt.Errorf("business %q is listed twice", b.ID)
		}
		seen[b.ID] = true
		if b.Name = strings.TrimSpace(b.Name); len(b.Name) > 200 {
			return fmt.Errorf("business %q: name must be at most 200 characters", b.ID)
		}
	}
	if spec.CurrentBusiness == "" {
		spec.CurrentBusiness = spec.Businesses[0].ID
	}
	if !seen[spec.CurrentBusiness] {
		return fmt.Errorf("current_business %q is not one of the user's businesses", spec.CurrentBusiness)
	}
	return nil
}

// CreateUser adds a user to the directory: tokenstore.ErrConflict when the
// e-mail or id is taken. Businesses are created as needed. An existing
// business keeps its name: other users may share it, so creating a user
// never renames it, and a different name given for it is refused
// (*nameError) before anything is written.
func (s *Server) CreateUser(ctx context.Context, spec UserSpec) (*tokenstore.User, error) {
	if err := spec.normalize(); err != nil {
		return nil, &specError{err}
	}
	return s.createUser(ctx, spec, true)
}

// createUser is CreateUser on a normalized spec; strict refuses a business
// named otherwise than it is.
func (s *Server) createUser(ctx context.Context, spec UserSpec, strict bool) (*tokenstore.User, error) {
	if strict {
		if err := s.checkBusinessNames(ctx, spec.Businesses); err != nil {
			return nil, err
		}
	}
	hash := spec.PasswordHash
	if hash == "" {
		var err error
		if hash, err = hashPassword(spec.Password); err != nil {
			return nil, &specError{err}
		}
	}
	if spec.ID == "" {
		var err error
		if spec.ID, err = tokens.NewID("usr_"); err != nil {
			return nil, err
		}
	}
	if err := s.ensureBusinesses(ctx, spec.Businesses, strict); err != nil {
		return nil, err
	}
	u := &tokenstore.User{ID: spec.ID, Email: spec.Email, Name: spec.Name, PasswordHash: hash,
		CurrentBusiness: spec.CurrentBusiness, CreatedAt: s.now().UTC()}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	if err := s.store.SetMemberships(ctx, u.ID, businessIDs(spec.Businesses)); err != nil {
		_, _ = s.store.DeleteUser(ctx, u.ID, s.now())
		return nil, err
	}
	return u, nil
}

// EnsureUser makes the directory hold the user as declared in the
// configuration: created when its e-mail is unknown, otherwise brought up
// to date (name, password, businesses, current business). The password is
// hashed again only when it changed. A business's declared name is the
// name it is created with; an existing business keeps the one it has.
func (s *Server) EnsureUser(ctx context.Context, spec UserSpec) error {
	if err := spec.normalize(); err != nil {
		return err
	}
	u, err := s.store.GetUserByEmail(ctx, spec.Email)
	if errors.Is(err, tokenstore.ErrNotFound) {
		if spec.ID == "" {
			sum := sha256.Sum256([]byte(spec.Email))
			spec.ID = "usr_" + hex.EncodeToString(sum[:12])
		}
		_, err = s.createUser(ctx, spec, false)
		if !errors.Is(err, tokenstore.ErrConflict) {
			return err
		}
		// Another node created it meanwhile: update that one.
		u, err = s.store.GetUserByEmail(ctx, spec.Email)
	}
	if err != nil {
		return err
	}
	if spec.ID != "" && spec.ID != u.ID {
		return fmt.Errorf("user %s exists with id %q, not %q", spec.Email, u.ID, spec.ID)
	}
	hash := u.PasswordHash
	switch {
	case spec.PasswordHash != "":
		hash = spec.PasswordHash
	case hash == "" || !checkPassword(hash, spec.Password):
		if hash, err = hashPassword(spec.Password); err != nil {
			return err
		}
	}
	if err := s.ensureBusinesses(ctx, spec.Businesses, false); err != nil {
		return err
	}
	if u.Name != spec.Name || u.PasswordHash != hash || u.CurrentBusiness != spec.CurrentBusiness {
		u.Name, u.PasswordHash, u.CurrentBusiness = spec.Name, hash, spec.CurrentBusiness
		if err := s.store.UpdateUser(ctx, u); err != nil {
			return err
		}
	}
	return s.store.SetMemberships(ctx, u.ID, businessIDs(spec.Businesses))
}

// nameError refuses a business named otherwise than it is: renaming is
// the business endpoint's job, never a side effect of creating a user.
type nameError struct{ id, have, want string }

func (e *nameError) Error() string {
	return fmt.Sprintf("business %q exists, named %q, not %q: give its id alone, or rename it first (POST /oauthgate/businesses, caddy oauthgate business create)",
		e.id, e.have, e.want)
}

// checkBusinessNames refuses, before anything is written, a name that
// differs from the one an existing business has.
func (s *Server) checkBusinessNames(ctx context.Context, bs []BusinessSpec) error {
	for _, b := range bs {
		if b.Name == "" {
			continue
		}
		have, err := s.store.GetBusiness(ctx, b.ID)
		switch {
		case errors.Is(err, tokenstore.ErrNotFound):
		case err != nil:
			return err
		case have.Name != b.Name:
			return &nameError{id: b.ID, have: have.Name, want: b.Name}
		}
	}
	return nil
}

// ensureBusinesses creates the businesses that do not exist yet, named as
// given (or after their id). It never renames one; strict refuses a
// business that another request created meanwhile with another name.
func (s *Server) ensureBusinesses(ctx context.Context, bs []BusinessSpec, strict bool) error {
	for _, b := range bs {
		name := b.Name
		if name == "" {
			name = b.ID
		}
		err := s.store.CreateBusiness(ctx, &tokenstore.Business{ID: b.ID, Name: name})
		if !errors.Is(err, tokenstore.ErrConflict) {
			if err != nil {
				return err
			}
			continue
		}
		if !strict || b.Name == "" {
			continue
		}
		have, err := s.store.GetBusiness(ctx, b.ID)
		if err != nil {
			return err
		}
		if have.Name != b.Name {
			return &nameError{id: b.ID, have: have.Name, want: b.Name}
		}
	}
	return nil
}

func businessIDs(bs []BusinessSpec) []string {
	ids := make([]string, len(bs))
	for i, b := range bs {
		ids[i] = b.ID
	}
	return ids
}

// specError is a user spec the admin API refuses with 400.
type specError struct{ error }

func (s *Server) viewUser(ctx context.Context, u *tokenstore.User) (userView, error) {
	bs, err := s.store.Memberships(ctx, u.ID)
	if err != nil {
		return userView{}, err
	}
	v := userView{ID: u.ID, Email: u.Email, Name: u.Name, CurrentBusiness: u.CurrentBusiness,
		HasPassword: u.PasswordHash != "", CreatedAt: u.CreatedAt, Businesses: make([]BusinessSpec, 0, len(bs))}
	for _, b := range bs {
		v.Businesses = append(v.Businesses, BusinessSpec{ID: b.ID, Name: b.Name})
	}
	return v, nil
}

func (s *Server) adminCreateUser(w http.ResponseWriter, r *http.Request) {
	var spec UserSpec
	if !decodeAdmin(w, r, &spec) {
		return
	}
	u, err := s.CreateUser(r.Context(), spec)
	var se *specError
	var ne *nameError
	switch {
	case errors.As(err, &se):
		adminError(w, http.StatusBadRequest, se.Error())
		return
	case errors.As(err, &ne):
		adminError(w, http.StatusConflict, "creating user: "+ne.Error())
		return
	case errors.Is(err, tokenstore.ErrConflict):
		adminError(w, http.StatusConflict, "creating user: a user with this e-mail or id already exists")
		return
	case err != nil:
		s.adminStoreError(w, "creating user", err)
		return
	}
	v, err := s.viewUser(r.Context(), u)
	if err != nil {
		s.adminStoreError(w, "loading user", err)
		return
	}
	w.Header().Set("Location", AdminPrefix+"users/"+url.PathEscape(u.ID))
	adminJSON(w, http.StatusCreated, v)
}

func (s *Server) adminListUsers(w http.ResponseWriter, r *http.Request) {
	us, err := s.store.ListUsers(r.Context())
	if err != nil {
		s.adminStoreError(w, "listing users", err)
		return
	}
	out := make([]userView, 0, len(us))
	for _, u := range us {
		v, err := s.viewUser(r.Context(), u)
		if err != nil {
			s.adminStoreError(w, "listing users", err)
			return
		}
		out = append(out, v)
	}
	adminJSON(w, http.StatusOK, out)
}

// lookupUser finds a user by id, or by e-mail when the key has an @.
func (s *Server) lookupUser(ctx context.Context, key string) (*tokenstore.User, error) {
	if strings.Contains(key, "@") {
		return s.store.GetUserByEmail(ctx, key)
	}
	return s.store.GetUser(ctx, key)
}

func (s *Server) adminGetUser(w http.ResponseWriter, r *http.Request) {
	u, err := s.lookupUser(r.Context(), r.PathValue("id"))
	if err != nil {
		s.adminStoreError(w, "loading user", err)
		return
	}
	v, err := s.viewUser(r.Context(), u)
	if err != nil {
		s.adminStoreError(w, "loading user", err)
		return
	}
	adminJSON(w, http.StatusOK, v)
}

// adminDeleteUser deletes the user and, in the same commit, revokes every
// grant of the user (see tokens.Service.DeleteUser): a failure leaves both
// as they were, and no grant created before the 204 survives it.
func (s *Server) adminDeleteUser(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u, err := s.lookupUser(ctx, r.PathValue("id"))
	if err != nil {
		s.adminStoreError(w, "loading user", err)
		return
	}
	if err := s.tokens.DeleteUser(ctx, u.ID); err != nil {
		s.adminStoreError(w, "deleting user", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminListBusinesses(w http.ResponseWriter, r *http.Request) {
	bs, err := s.store.ListBusinesses(r.Context())
	if err != nil {
		s.adminStoreError(w, "listing businesses", err)
		return
	}
	out := make([]businessView, 0, len(bs))
	for _, b := range bs {
		out = append(out, businessView{ID: b.ID, Name: b.Name, CreatedAt: b.CreatedAt})
	}
	adminJSON(w, http.StatusOK, out)
}

// adminUpsertBusiness creates a business or renames it.
func (s *Server) adminUpsertBusiness(w http.ResponseWriter, r *http.Request) {
	var b BusinessSpec
	if !decodeAdmin(w, r, &b) {
		return
	}
	b.Name = strings.TrimSpace(b.Name)
	if !policies.ValidBusinessID(b.ID) {
		adminError(w, http.StatusBadRequest, fmt.Sprintf("business id %q: want 1 to 128 characters of A-Z a-z 0-9 . _ : -", b.ID))
		return
	}
	if b.Name == "" || len(b.Name) > 200 {
		adminError(w, http.StatusBadRequest, "name is required (at most 200 characters)")
		return
	}
	if err := s.store.UpsertBusiness(r.Context(), &tokenstore.Business{ID: b.ID, Name: b.Name}); err != nil {
		s.adminStoreError(w, "saving business", err)
		return
	}
	got, err := s.store.GetBusiness(r.Context(), b.ID)
	if err != nil {
		s.adminStoreError(w, "loading business", err)
		return
	}
	adminJSON(w, http.StatusOK, businessView{ID: got.ID, Name: got.Name, CreatedAt: got.CreatedAt})
}
