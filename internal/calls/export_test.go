package calls

import "context"

// Publish sends an empty call frame to device through the bus, behind
// everything published before: the tests' marker that the bus is drained.
func (s *Service) Publish(ctx context.Context, conv, device string) {
	s.publish(ctx, &record{ID: "marker", Conv: conv}, "marker", Party{}, nil, []string{device}, envelope{})
}
