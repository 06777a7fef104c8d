package management

// RouteTable lists every registered route pattern, for tests outside the
// package that walk them all.
func RouteTable() []string {
	a := newAPI(nil, Options{})
	a.handler()
	return append([]string(nil), a.routes...)
}
