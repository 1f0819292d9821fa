package cfn

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/keyflow/keyflow/tasks"
)

// sdkInterfaces are the SDK surfaces of package tasks with the IAM service
// prefix of their actions. Reflection over them (not a list typed here) is
// what makes a new method in tasks a new action the roles must grant.
var sdkInterfaces = []struct {
	prefix string
	typ    reflect.Type
}{
	{"iam", reflect.TypeFor[tasks.IAMAPI]()},
	{"secretsmanager", reflect.TypeFor[tasks.SecretsManagerAPI]()},
	{"sns", reflect.TypeFor[tasks.SNSAPI]()},
	{"organizations", reflect.TypeFor[tasks.OrganizationsAPI]()},
	{"sts", reflect.TypeFor[tasks.STSAPI]()},
	{"states", reflect.TypeFor[tasks.SFNAPI]()},
	{"states", reflect.TypeFor[tasks.ExecutionsAPI]()},
	{"s3", reflect.TypeFor[tasks.S3API]()},
	{"ses", reflect.TypeFor[tasks.SESAPI]()},
}

// authorizedAs names the SDK calls that IAM authorizes under another
// action's name.
var authorizedAs = map[string]string{"s3:HeadObject": "s3:GetObject"}

// sdkMethods maps each SDK method name of those interfaces to its IAM
// action ("ListUsers" -> "iam:ListUsers").
func sdkMethods(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, sdk := range sdkInterfaces {
		prefix, typ := sdk.prefix, sdk.typ
		for i := range typ.NumMethod() {
			name := typ.Method(i).Name
			if prev, ok := m[name]; ok {
				t.Fatalf("method %s is on two SDK interfaces (%s and %s): the walk cannot tell their actions apart", name, prev, prefix)
			}
			action := prefix + ":" + name
			if other, ok := authorizedAs[action]; ok {
				action = other
			}
			m[name] = action
		}
	}
	return m
}

// derivedActions reads package tasks' source and returns, for each handler
// type with a Handle method, the IAM actions its code can reach: a call of
// an SDK interface method, or of an SDK paginator (NewListUsersPaginator
// calls ListUsers), in Handle or in any function or method of the package it
// calls, transitively. The call graph is by name, which over-approximates
// (two methods of one name are both followed) but never misses a call: a
// role that satisfies this map has every action its handler can need.
func derivedActions(t *testing.T) map[string][]string {
	t.Helper()
	methods := sdkMethods(t)
	dir := filepath.Join("..", "tasks")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	type fn struct {
		recv string   // receiver type name, "" for a function
		sdk  []string // actions called directly
		uses []string // package functions and methods called, by name
	}
	decls := map[string][]*fn{} // by function or method name
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			node := &fn{}
			if fd.Recv != nil && len(fd.Recv.List) == 1 {
				typ := fd.Recv.List[0].Type
				if s, ok := typ.(*ast.StarExpr); ok {
					typ = s.X
				}
				if id, ok := typ.(*ast.Ident); ok {
					node.recv = id.Name
				}
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				var callee string
				switch f := call.Fun.(type) {
				case *ast.Ident:
					callee = f.Name
				case *ast.SelectorExpr:
					callee = f.Sel.Name
				default:
					return true
				}
				if callee == "NewAssumeRoleProvider" {
					// stscreds calls AssumeRole with the client it is given.
					node.sdk = append(node.sdk, "sts:AssumeRole")
				} else if a, ok := methods[callee]; ok {
					node.sdk = append(node.sdk, a)
				} else if m, ok := strings.CutPrefix(callee, "New"); ok && strings.HasSuffix(m, "Paginator") {
					if a, ok := methods[strings.TrimSuffix(m, "Paginator")]; ok {
						node.sdk = append(node.sdk, a)
					}
				}
				node.uses = append(node.uses, callee)
				return true
			})
			decls[fd.Name.Name] = append(decls[fd.Name.Name], node)
		}
	}
	out := map[string][]string{}
	for _, h := range decls["Handle"] {
		seen := map[*fn]bool{}
		acts := map[string]bool{}
		var visit func(*fn)
		visit = func(f *fn) {
			if seen[f] {
				return
			}
			seen[f] = true
			for _, a := range f.sdk {
				acts[a] = true
			}
			for _, u := range f.uses {
				for _, g := range decls[u] {
					// Another handler's Handle is never reached through a
					// call by name: handlers do not call each other.
					if u == "Handle" && g != f {
						continue
					}
					visit(g)
				}
			}
		}
		visit(h)
		list := make([]string, 0, len(acts))
		for a := range acts {
			list = append(list, a)
		}
		slices.Sort(list)
		out[h.recv] = list
	}
	return out
}
