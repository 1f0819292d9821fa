package states

func (d *decoder) succeedFields(s *Succeed) fieldSet {
	return d.common(&s.CommonFields, "InputPath", "OutputPath", "Output")
}
