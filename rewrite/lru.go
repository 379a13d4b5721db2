package rewrite

import "container/list"

// The rewriter's caches (decisions by text, templates by normalized text) are least-recently-used
// caches bounded by bytes, with a share per workspace: a workspace that sends ever new statements evicts
// its own least recently used entries once it holds its share, never another workspace's, so a noisy
// neighbour cannot flush a steady workspace's decisions. The total is bounded too: past it, the
// workspace holding the most gives up its oldest entries.

const (
	// cacheBytes bounds each cache; cacheShare is what one workspace may hold of it.
	cacheBytes = 32 << 20
	cacheShare = 4 << 20
	// entryOverhead is what an entry costs beyond its texts: the key, the list element, the maps.
	entryOverhead = 256
)

// lru is a byte-bounded LRU cache of V by cacheKey with a share per workspace. It is not safe for
// concurrent use: the Rewriter's mutex guards it.
type lru[V any] struct {
	limit, share int
	used         int
	entries      map[cacheKey]*list.Element
	workspaces   map[string]*wsEntries
}

// wsEntries are one workspace's entries, most recently used first.
type wsEntries struct {
	order *list.List // of *lruEntry
	used  int
}

type lruEntry[V any] struct {
	key   cacheKey
	value V
	size  int
}

func newLRU[V any](limit, share int) *lru[V] {
	return &lru[V]{limit: limit, share: share, entries: map[cacheKey]*list.Element{}, workspaces: map[string]*wsEntries{}}
}

// get returns the entry of key and marks it used.
func (c *lru[V]) get(key cacheKey) (V, bool) {
	el, ok := c.entries[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.workspaces[key.workspace].order.MoveToFront(el)
	return el.Value.(*lruEntry[V]).value, true
}

// put adds or replaces the entry of key, of size bytes beyond entryOverhead, and evicts what the bounds
// require.
func (c *lru[V]) put(key cacheKey, value V, size int) {
	size += entryOverhead + len(key.sql) + len(key.params)
	if el, ok := c.entries[key]; ok {
		c.remove(el)
	}
	ws := c.workspaces[key.workspace]
	if ws == nil {
		ws = &wsEntries{order: list.New()}
		c.workspaces[key.workspace] = ws
	}
	c.entries[key] = ws.order.PushFront(&lruEntry[V]{key: key, value: value, size: size})
	ws.used += size
	c.used += size
	for ws.used > c.share && ws.order.Len() > 1 {
		c.remove(ws.order.Back())
	}
	for c.used > c.limit {
		biggest := ws
		for _, w := range c.workspaces {
			if w.used > biggest.used {
				biggest = w
			}
		}
		c.remove(biggest.order.Back())
	}
}

func (c *lru[V]) remove(el *list.Element) {
	e := el.Value.(*lruEntry[V])
	ws := c.workspaces[e.key.workspace]
	ws.order.Remove(el)
	ws.used -= e.size
	c.used -= e.size
	delete(c.entries, e.key)
	if ws.order.Len() == 0 {
		delete(c.workspaces, e.key.workspace)
	}
}
