package policy

// Priority answers the healthy targets of the lowest tier that has at
// least min-healthy of them, rotated; if no tier has that many, the
// lowest tier with any, because a degraded answer beats none. Tiers below
// it are not returned.
var Priority Policy = priority{}

func init() { Register(Priority) }

type priority struct{}

func (priority) Name() string { return "priority" }

func (priority) Build(ts []Target, o Options) Answer {
	return rotation(lowestTier(ts, o.MinHealthy), o.MaxAnswers, o.Rot)
}

// lowestTier returns the healthy targets of the tier Priority answers.
func lowestTier(ts []Target, minHealthy int) []Target {
	minHealthy = max(minHealthy, 1)
	best, bestAny := -1, -1
	for _, tier := range tiers(ts) {
		n := 0
		for _, t := range ts {
			if t.Healthy && t.Tier == tier {
				n++
			}
		}
		if n > 0 && bestAny < 0 {
			bestAny = tier
		}
		if n >= minHealthy && n > 0 {
			best = tier
			break
		}
	}
	if best < 0 {
		best = bestAny
	}
	var out []Target
	for _, t := range ts {
		if t.Healthy && t.Tier == best {
			out = append(out, t)
		}
	}
	return out
}

// tiers returns the distinct tiers in ascending order.
func tiers(ts []Target) []int {
	var out []int
	for _, c := range ts {
		i := 0
		for i < len(out) && out[i] < c.Tier {
			i++
		}
		if i < len(out) && out[i] == c.Tier {
			continue
		}
		out = append(out, 0)
		copy(out[i+1:], out[i:])
		out[i] = c.Tier
	}
	return out
}
