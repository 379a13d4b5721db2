package rewrite

import (
	"fmt"
	"testing"

	"github.com/tenantproxy/tenantproxy/tenant"
)

// TestLRUShares: a workspace over its share evicts its own least recently used entries, not another's;
// past the total, the workspace holding the most gives up its oldest; a used entry is kept over an
// unused one.
func TestLRUShares(t *testing.T) {
	key := func(ws string, i int) cacheKey { return cacheKey{workspace: ws, sql: fmt.Sprintf("q%04d", i)} }
	entry := entryOverhead + len("q0000")
	c := newLRU[int](20*entry, 10*entry)
	for i := range 5 {
		c.put(key("steady", i), i, 0)
	}
	for i := range 1000 {
		c.put(key("noisy", i), i, 0)
		if _, ok := c.get(key("steady", i%5)); !ok {
			t.Fatalf("the noisy workspace's entry %d evicted the steady one's", i)
		}
	}
	if got := c.workspaces["noisy"].used; got > 10*entry {
		t.Errorf("the noisy workspace holds %d bytes, over its share of %d", got, 10*entry)
	}
	if _, ok := c.get(key("noisy", 999)); !ok {
		t.Error("the noisy workspace's newest entry is gone")
	}
	// Two more workspaces take the total over its bound: the biggest (noisy) gives way.
	for _, ws := range []string{"b", "c"} {
		for i := range 4 {
			c.put(key(ws, i), i, 0)
		}
	}
	if c.used > c.limit {
		t.Errorf("%d bytes held, over the bound of %d", c.used, c.limit)
	}
	for i := range 5 {
		if _, ok := c.get(key("steady", i)); !ok {
			t.Errorf("the steady workspace lost entry %d to the total's bound", i)
		}
	}
	if got := c.workspaces["noisy"].used; got >= 10*entry {
		t.Errorf("the biggest workspace kept %d bytes past the total's bound", got)
	}
}

// noisyNeighbour runs a steady workspace's 50 statements in turn while another workspace sends n
// statements it never repeats, and returns the steady workspace's cache hit rate after its warm-up.
func noisyNeighbour(tb testing.TB, r *Rewriter, n int) float64 {
	steady, _ := goldenInput(tb, "")
	noisy := steady
	noisy.Tenant = &tenant.Context{ID: "9e81d4", Slug: "globex", Permissions: steady.Tenant.Permissions}
	run := func(in Input, sql string) {
		in.SQL = sql
		if _, err := r.Rewrite(in); err != nil {
			tb.Fatalf("%s: %v", sql, err)
		}
	}
	// Half the statements with parameters (decided by their text), half with constants (by their shape).
	statement := func(alias string, i, id int) string {
		if i%2 == 0 {
			return fmt.Sprintf("SELECT name AS %s%d FROM projects WHERE id = $1", alias, i)
		}
		return fmt.Sprintf("SELECT name AS %s%d FROM projects WHERE id = %d", alias, i, id)
	}
	for i := range 50 {
		run(steady, statement("n", i, i))
	}
	calls, hits := 0, uint64(0)
	for i := range n {
		run(noisy, statement("x", i, i))
		if i%20 == 0 {
			before, _ := r.CacheStats()
			run(steady, statement("n", calls%50, calls))
			after, _ := r.CacheStats()
			calls++
			hits += after - before
		}
	}
	return float64(hits) / float64(calls)
}

// TestCacheNoisyNeighbour: a workspace sending 20,000 statements it never repeats, many times what the
// caches hold here, does not flush a steady workspace's decisions.
func TestCacheNoisyNeighbour(t *testing.T) {
	r := goldenRewriters(t)["main"]
	r = New(r.cat, r.given)
	r.cache, r.templates = newLRU[cached](256<<10, 128<<10), newLRU[*template](256<<10, 128<<10)
	if rate := noisyNeighbour(t, r, 20000); rate < 0.99 {
		t.Errorf("the steady workspace's hit rate is %.3f with a noisy neighbour, want above 0.99", rate)
	}
}

// BenchmarkCacheNoisyNeighbour reports the steady workspace's hit rate while its neighbour sends 100,000
// statements it never repeats (go test ./rewrite -run '^$' -bench CacheNoisyNeighbour -benchtime 1x).
func BenchmarkCacheNoisyNeighbour(b *testing.B) {
	for range b.N {
		b.ReportMetric(100*noisyNeighbour(b, goldenRewriters(b)["main"], 100000), "steady-hit-%")
	}
}
