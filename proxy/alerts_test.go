package proxy

import (
	"testing"
	"time"
)

// TestUnscopedAlertsWindow: one alert per workspace and shape per window, carrying the statements since
// the previous one; other workspaces and shapes alert on their own; a full table forgets.
func TestUnscopedAlertsWindow(t *testing.T) {
	var u unscopedAlerts
	t0 := time.Unix(1000, 0)
	const window = time.Minute
	steps := []struct {
		workspace, shape string
		at               time.Duration
		count            int
		alert            bool
	}{
		{"a", "q1", 0, 1, true},
		{"a", "q1", time.Second, 0, false},
		{"a", "q1", 2 * time.Second, 0, false},
		{"b", "q1", 3 * time.Second, 1, true},
		{"a", "q2", 4 * time.Second, 1, true},
		{"a", "q1", window + time.Second, 3, true}, // the two suppressed, and this one
		{"a", "q1", window + 2*time.Second, 0, false},
	}
	for i, s := range steps {
		count, alert := u.note(s.workspace, s.shape, t0.Add(s.at), window)
		if count != s.count || alert != s.alert {
			t.Errorf("step %d (%s %s at %v): %d, %v; want %d, %v", i, s.workspace, s.shape, s.at, count, alert, s.count, s.alert)
		}
	}
	for i := range maxUnscopedShapes + 10 {
		u.note("c", string(rune(i)), t0.Add(2*window), window)
	}
	if n := len(u.shapes); n > maxUnscopedShapes {
		t.Errorf("%d shapes kept, over the bound of %d", n, maxUnscopedShapes)
	}
}
